import { performance } from 'node:perf_hooks';
import type { AccountConfig } from '../config/types';
import type { Clock } from '../core/clock';
import { BrokerError, StateError, classifyRenewalError, describeError } from '../core/errors';
import type { AccountRef, EventBus, IssueWhy } from '../core/events';
import { Serial } from '../core/serial';
import type { Limiter } from '../core/limiter';
import type { SecretRegistry } from '../core/secrets';
import type { IssuedToken, TokenProvider } from '../providers/types';
import type { SinkSupervisor } from '../sinks/supervisor';
import type { TokenView } from '../sinks/formats';
import { appKeyId, credentialsId, emptyState, tokenId, type AccountState } from '../store/state';
import type { StateStore } from '../store/store';
import { adoptedRecord, chooseAdoption } from './adopt';
import { stateNotBelievable } from './trust';
import { retryDelayMs } from './backoff';
import { NEVER, correctedForClockJumpBack, decide, isUsable, expiryFromSameToken, nextAttemptAfterSameToken, tokenStatus, type Decision } from './policy';
import { snapshotOf, type AccountSnapshot } from './snapshot';

export type { AccountSnapshot } from './snapshot';

/**
 * One account's token, from start to revoke: decides with the pure policy, acts (issue, prove, persist,
 * publish to sinks) and reports through events. `tick()` does whatever is due and says when it next has
 * something to do; the loop that calls it is elsewhere, so tests drive it step by step on a fake clock.
 */

export interface AccountLifecycleDeps {
  config: AccountConfig;
  provider: TokenProvider;
  store: StateStore;
  sinks: SinkSupervisor;
  bus: EventBus;
  clock: Clock;
  /** Every token and approval key that enters the state is registered here, so no output can carry it. */
  secrets: SecretRegistry;
  /** Bounds the broker requests in flight across all accounts. */
  limiter?: Limiter;
  random?: () => number;
}

type Persistence = 'shared' | 'local';

export type RenewOutcome =
  | { result: 'issued'; expiresAt: number }
  | { result: 'same_token'; nextAttemptAt: number }
  | { result: 'failed'; reason: string; message: string; nextAttemptAt: number | null }
  | { result: 'wait'; until: number; why: string };

const APPROVAL_KEY_RETRY_MS = 60_000;
// With a shared store: how soon to look again when a peer holds the issuance lease, or the store is away.
const PEER_POLL_MS = 2_000;
const STORE_RETRY_MS = 5_000;

export class AccountLifecycle {
  readonly ref: AccountRef;
  private state: AccountState;
  private readonly serial = new Serial();
  private readonly random: () => number;
  private stateDirty = false;
  private unsubscribe: () => void = () => undefined;
  private approvalKeyRetryAt = 0;

  constructor(private readonly deps: AccountLifecycleDeps) {
    const { config } = deps;
    this.ref = { name: config.name, provider: config.provider, env: config.env };
    this.state = emptyState(config);
    this.random = deps.random ?? Math.random;
  }

  get config(): AccountConfig {
    return this.deps.config;
  }

  private get credentials() {
    return { appKey: this.deps.config.appKey, appSecret: this.deps.config.appSecret };
  }

  private get needsApprovalKey(): boolean {
    return this.deps.config.sinks.some((s) => s.format === 'approval-key');
  }

  /**
   * Loads the durable state (or adopts a token from the sink files when there is none) and brings the sink
   * files in line with it. No broker request is made here.
   */
  start(): Promise<void> {
    return this.serial.run(async () => {
      const { store, clock, bus, config } = this.deps;
      const loaded = await store.load(config.name);
      if (loaded.problem) {
        bus.emit('state.error', { account: this.ref, reason: loaded.problem.code, message: loaded.problem.message });
      }
      let state = loaded.state;
      const distrust = state && stateNotBelievable(state, config, clock.now());
      if (distrust) {
        // Another app key's state (the configured key changed), or a token no broker answer could have given:
        // neither its token nor its spacing is this account's. The spacing still runs from the file's last write.
        bus.emit('state.error', { account: this.ref, reason: 'set_aside', message: `the stored state of ${config.name} was set aside: ${distrust}` });
        state = undefined;
      }
      this.state = state ?? emptyState(config);
      if (!state && loaded.lastWriteAt !== undefined) {
        // The lost state may have recorded an attempt: count the spacing from its last write, to be safe.
        this.state.lastAttempt = { at: loaded.lastWriteAt, outcome: 'pending' };
      }
      if (!this.state.token) await this.adoptFromSinks(clock.now());
      this.deps.secrets.add(this.state.token?.accessToken);
      this.deps.secrets.add(this.state.approvalKey?.key);
      bus.emit('state.loaded', { account: this.ref, issuances: this.state.issuances });
      await this.persist('local');
      // The shared store has no copy (new, or it lost its data): this replica's token is offered to the others.
      if (store.shared && loaded.localOnly && this.state.token) await store.offer(this.state);
      if (this.state.token) await this.publish('start');
      // A peer's new token is taken up at once, not at this replica's next tick.
      this.unsubscribe = store.onChange((account) => {
        if (account === config.name) void this.serial.run(() => this.refreshShared());
      });
    });
  }

  /** Stops listening to the shared store (the account was removed by a config reload, or the sidecar stops). */
  stop(): void {
    this.unsubscribe();
  }

  /**
   * With a shared store: takes up a newer state another replica wrote (its token goes into this replica's
   * files at once), or, when the shared copy is missing or older than this replica's (the store lost its data,
   * or this replica's last save did not reach it), offers this replica's own.
   */
  private async refreshShared(): Promise<void> {
    const { store, config, bus } = this.deps;
    if (!store.shared) return;
    const loaded = await store.load(config.name);
    if (loaded.unavailable) return;
    const remote = loaded.localOnly ? undefined : loaded.state;
    if (!remote || remote.revision < this.state.revision) {
      if (this.state.token && (await store.offer(this.state))) bus.emit('state.offered', { account: this.ref, revision: this.state.revision });
      return;
    }
    if (remote.revision === this.state.revision) return;
    const distrust = stateNotBelievable(remote, config, this.deps.clock.now());
    if (distrust) {
      // Said once per revision: the store announces each change once.
      bus.emit('state.error', { account: this.ref, reason: 'set_aside', message: `the shared state of ${config.name} (revision ${remote.revision}) was set aside: ${distrust}` });
      return;
    }
    const previous = this.state;
    const sameToken = remote.token?.accessToken === previous.token?.accessToken;
    // What this replica learnt by itself about the same token (its own proofs) stays.
    this.state = {
      ...remote,
      lastProof: previous.lastProof,
      token: remote.token && sameToken && previous.token?.provenAt !== undefined ? { ...remote.token, provenAt: previous.token.provenAt } : remote.token,
    };
    this.deps.secrets.add(this.state.token?.accessToken);
    this.deps.secrets.add(this.state.approvalKey?.key);
    await this.persist('local');
    if (!sameToken && this.state.token) {
      bus.emit('token.shared', { account: this.ref, tokenId: tokenId(this.state.token.accessToken), expiresAt: this.state.token.expiresAt });
    }
    if (this.state.token && (!sameToken || remote.approvalKey?.key !== previous.approvalKey?.key)) await this.publish('token');
  }

  private async adoptFromSinks(now: number): Promise<void> {
    const { sinks, config, bus } = this.deps;
    const chosen = chooseAdoption(await sinks.tokensOnDisk(config.name), config, now);
    if (!chosen) return;
    this.state.token = adoptedRecord(chosen, config, now, this.random());
    bus.emit('token.adopted', { account: this.ref, from: `${chosen.sink} (${chosen.path})`, tokenId: tokenId(chosen.token.accessToken), expiresAt: chosen.expiresAt });
  }

  tick(): Promise<number> {
    return this.serial.run(() => this.step(false).then((r) => r.nextWakeAt));
  }

  /**
   * A person asked for a renewal. With `force` a valid token is replaced too; either way the spacing holds,
   * and the answer says how long to wait when it does.
   */
  renewNow(force: boolean): Promise<RenewOutcome> {
    return this.serial.run(async () => (await this.step(force, true)).outcome);
  }

  private async step(force: boolean, manual = false): Promise<{ nextWakeAt: number; outcome: RenewOutcome }> {
    const { clock, config } = this.deps;
    await this.flushState();
    await this.refreshShared();
    const now = clock.now();
    const corrected = correctedForClockJumpBack(this.state, now);
    if (corrected) {
      this.state = corrected;
      await this.persist('local');
    }
    const decision: Decision = decide({
      now,
      state: this.state,
      policy: config.renewal,
      credentialsId: credentialsId(config.appKey, config.appSecret),
      force,
      requestTimeoutMs: config.http.timeoutMs,
    });
    if (decision.kind === 'issue') {
      const outcome = await this.issue(decision.why, force);
      return { nextWakeAt: outcome.result === 'wait' ? outcome.until : clock.now(), outcome };
    }
    const waitOutcome: RenewOutcome = { result: 'wait', until: decision.until, why: decision.why };
    if (manual) return { nextWakeAt: clock.now(), outcome: waitOutcome };

    const proofAt = this.nextProofAt();
    if (proofAt !== undefined && proofAt <= now) {
      await this.prove();
      return { nextWakeAt: clock.now(), outcome: waitOutcome };
    }
    const approvalAt = this.nextApprovalKeyAt();
    if (approvalAt !== undefined && approvalAt <= now) {
      await this.refreshApprovalKey(true, 'local');
      return { nextWakeAt: clock.now(), outcome: waitOutcome };
    }
    const next = Math.min(decision.until, proofAt ?? NEVER, approvalAt ?? NEVER);
    return { nextWakeAt: next, outcome: waitOutcome };
  }

  /** A broker call, within the limit of calls in flight across all accounts. */
  private limited<T>(call: () => Promise<T>): Promise<T> {
    return this.deps.limiter ? this.deps.limiter.run(call) : call();
  }

  /**
   * Issues under the account's issuance lease. With a shared store that means: never while the store is out
   * of reach (see RedisStateStore for why), wait while a peer holds the lease, and decide again on the freshest
   * shared state once holding it, since a peer may have renewed a moment ago.
   */
  private async issue(why: IssueWhy, force: boolean): Promise<RenewOutcome> {
    const { store, clock, config } = this.deps;
    if (store.shared && !store.health().up) return { result: 'wait', until: clock.now() + STORE_RETRY_MS, why: 'store_unavailable' };
    return this.limited(async () => {
      const lease = await store.acquireIssuance(config.name);
      if ('busyForMs' in lease) return { result: 'wait', until: clock.now() + Math.min(lease.busyForMs, PEER_POLL_MS), why: 'peer_issuing' };
      try {
        if (store.shared) {
          await this.refreshShared();
          const again = decide({
            now: clock.now(),
            state: this.state,
            policy: config.renewal,
            credentialsId: credentialsId(config.appKey, config.appSecret),
            force,
            requestTimeoutMs: config.http.timeoutMs,
          });
          if (again.kind !== 'issue') return { result: 'wait', until: again.until, why: again.why };
        }
        return await this.issueHoldingLease(why);
      } finally {
        await lease.release();
      }
    });
  }

  private async issueHoldingLease(why: IssueWhy): Promise<RenewOutcome> {
    const { clock, provider, bus, config } = this.deps;
    const attemptAt = clock.now();
    // A process that dies mid-request leaves "pending" on disk, and its successor counts the spacing from
    // attemptAt + the request timeout. That bound holds only if the request cannot outlive it, so the timeout
    // runs from here, and the state save below eats into it (on a slow disk, tens of milliseconds).
    const attemptStarted = performance.now();
    const lastAttempt: NonNullable<AccountState['lastAttempt']> = { at: attemptAt, outcome: 'pending' };
    this.state.lastAttempt = lastAttempt;
    try {
      // The attempt is on disk (and in the shared store) before the request leaves: a crash after this line
      // cannot lead to a second request inside the spacing, from this replica or another.
      this.state.revision += 1;
      await this.deps.store.save(this.state);
    } catch (error) {
      this.state.lastAttempt = null;
      return this.recordFailure(new StateError('write_failed', describeError(error)), attemptAt, 0);
    }
    const timeLeftMs = Math.floor(config.http.timeoutMs - (performance.now() - attemptStarted));
    if (timeLeftMs < 1) {
      lastAttempt.endedAt = clock.now();
      const slowSave = new BrokerError('timeout', `saving the attempt took longer than the ${config.http.timeoutMs} ms request timeout: nothing was sent`);
      return this.recordFailure(slowSave, attemptAt, 0);
    }
    bus.emit('issuance.attempt', { account: this.ref, why });
    const started = performance.now();
    let issued: IssuedToken;
    try {
      issued = await provider.issue(this.credentials, () => clock.now(), timeLeftMs);
    } catch (error) {
      lastAttempt.endedAt = clock.now();
      return this.recordFailure(error, attemptAt, performance.now() - started);
    }
    const durationMs = performance.now() - started;
    const now = clock.now();
    const endedAt = now;
    this.deps.secrets.add(issued.accessToken);
    const current = this.state.token;
    if (current && current.accessToken === issued.accessToken) {
      // KIS gives the same token again within six hours of issuing it: nothing was renewed.
      this.state.lastAttempt = { at: attemptAt, outcome: 'same_token', endedAt };
      this.state.sameTokenStreak += 1;
      this.state.consecutiveFailures = 0;
      // The broker just stated this token's expiry: what was believed (another replica's, an adopted file's) yields to it.
      const learntExpiry = expiryFromSameToken(current, issued.expiresAt, now, config.renewal);
      if (learntExpiry !== undefined) this.state.token = { ...current, expiresAt: learntExpiry };
      this.state.nextRetryAt = nextAttemptAfterSameToken(this.state.token!, now, this.state.sameTokenStreak, config.renewal);
      await this.persist();
      if (learntExpiry !== undefined) await this.publish('token');
      bus.emit('issuance.same_token', { account: this.ref, tokenId: tokenId(current.accessToken), durationMs, nextAttemptAt: this.state.nextRetryAt });
      return { result: 'same_token', nextAttemptAt: this.state.nextRetryAt };
    }
    this.state.token = {
      accessToken: issued.accessToken,
      tokenType: issued.tokenType,
      expiresAt: issued.expiresAt,
      issuedAt: issued.issuedAt,
      receivedAt: now,
      source: 'issued',
      renewJitter: this.random(),
      raw: issued.raw,
    };
    this.state.invalidated = null;
    this.state.lastAttempt = { at: attemptAt, outcome: 'issued', endedAt };
    this.state.lastRenewalAt = now;
    this.state.issuances += 1;
    this.state.consecutiveFailures = 0;
    this.state.nextRetryAt = null;
    this.state.sameTokenStreak = 0;
    this.state.authBlock = null;
    this.approvalKeyRetryAt = 0;
    await this.persist();
    bus.emit('issuance.issued', { account: this.ref, tokenId: tokenId(issued.accessToken), expiresAt: issued.expiresAt, durationMs, expiryClamped: issued.expiryClamped });
    if (this.needsApprovalKey) await this.refreshApprovalKey(false, 'shared');
    await this.publish('token');
    return { result: 'issued', expiresAt: issued.expiresAt };
  }

  private async recordFailure(error: unknown, attemptAt: number, durationMs: number, persistence: Persistence = 'shared'): Promise<RenewOutcome> {
    const { clock, bus, config } = this.deps;
    const reason = classifyRenewalError(error);
    const message = describeError(error);
    const now = clock.now();
    if (this.state.lastAttempt) this.state.lastAttempt.outcome = reason;
    this.state.consecutiveFailures += 1;
    this.state.lastFailure = { at: now, reason, message };
    if (reason === 'auth_rejected') {
      // Permanent until the credentials change: asking again would only risk the app key's restriction.
      this.state.authBlock = { at: now, credentialsId: credentialsId(config.appKey, config.appSecret), message };
      this.state.nextRetryAt = null;
    } else {
      const usable = isUsable(tokenStatus(this.state, now, config.renewal));
      this.state.nextRetryAt = attemptAt + retryDelayMs(reason, this.state.consecutiveFailures, config.renewal, usable, this.random);
    }
    await this.persist(persistence);
    bus.emit('issuance.failed', {
      account: this.ref,
      reason,
      message,
      durationMs,
      consecutiveFailures: this.state.consecutiveFailures,
      nextAttemptAt: this.state.nextRetryAt,
    });
    if (reason === 'auth_rejected') bus.emit('issuance.blocked', { account: this.ref, message });
    return { result: 'failed', reason, message, nextAttemptAt: this.state.nextRetryAt };
  }

  private nextProofAt(): number | undefined {
    const { config, clock } = this.deps;
    const token = this.state.token;
    if (!config.proof.enabled || !token || this.state.invalidated) return undefined;
    if (clock.now() >= token.expiresAt) return undefined;
    const last = this.state.lastProof;
    // A token not yet proven (new, adopted) is proven at once.
    if (!last || token.provenAt === undefined && last.at < token.receivedAt) return clock.now();
    return last.at + config.proof.intervalMs;
  }

  /**
   * Calls the broker's cheap authenticated API with the token. A token that worked before and is now refused
   * died server-side (maintenance): it is marked invalid and re-issued within the rules. A token fresh from
   * the broker that is refused counts as a failed renewal, so backoff bounds the re-issues.
   */
  private async prove(): Promise<void> {
    const { provider, clock, bus } = this.deps;
    const token = this.state.token;
    if (!token) return;
    const started = performance.now();
    const outcome = await this.limited(() => provider.prove(this.credentials, token.accessToken));
    const durationMs = performance.now() - started;
    const now = clock.now();
    const message = outcome.result === 'ok' ? undefined : outcome.message;
    this.state.lastProof = { at: now, result: outcome.result, ...(message !== undefined ? { message } : {}) };
    if (outcome.result === 'ok') {
      token.provenAt = now;
    } else if (outcome.result === 'rejected') {
      const freshAndNeverProven = token.source === 'issued' && token.provenAt === undefined;
      this.state.invalidated = { at: now, brokerCode: outcome.brokerCode, message: outcome.message };
      bus.emit('token.invalidated', { account: this.ref, tokenId: tokenId(token.accessToken), brokerCode: outcome.brokerCode, message: outcome.message });
      if (freshAndNeverProven) {
        await this.recordFailure(
          new BrokerError('token_rejected', `the broker refused the token it had just issued (${outcome.brokerCode})`),
          this.state.lastAttempt?.at ?? now,
          0,
          'local',
        );
      }
    }
    // A proof concerns this replica; the re-issue it may lead to is shared, under the lease.
    await this.persist('local');
    bus.emit('proof.done', { account: this.ref, result: outcome.result, message, durationMs });
  }

  private nextApprovalKeyAt(): number | undefined {
    const token = this.state.token;
    if (!this.needsApprovalKey || !token || this.state.invalidated) return undefined;
    const key = this.state.approvalKey;
    if (key && key.issuedAt >= token.receivedAt) return undefined;
    return this.approvalKeyRetryAt;
  }

  /** The WebSocket approval key is fetched with each new token, so both files change together. */
  private async refreshApprovalKey(publish: boolean, persistence: Persistence): Promise<void> {
    const { provider, clock, bus } = this.deps;
    const issueApprovalKey = provider.issueApprovalKey?.bind(provider);
    if (!issueApprovalKey) return;
    try {
      const key = await this.limited(() => issueApprovalKey(this.credentials));
      this.deps.secrets.add(key);
      this.state.approvalKey = { key, issuedAt: clock.now() };
      await this.persist(persistence);
      bus.emit('approval_key.issued', { account: this.ref });
      if (publish) await this.publish('token');
    } catch (error) {
      this.approvalKeyRetryAt = clock.now() + APPROVAL_KEY_RETRY_MS;
      bus.emit('approval_key.failed', { account: this.ref, reason: classifyRenewalError(error), message: describeError(error) });
    }
  }

  /** Revokes the token at the broker, then forgets it: state and sink files. */
  revoke(): Promise<{ revoked: boolean; removedFiles: string[] }> {
    return this.serial.run(async () => {
      const { provider, store, sinks, bus, config } = this.deps;
      const lease = await store.acquireIssuance(config.name);
      if ('busyForMs' in lease) throw new Error(`another replica is issuing for ${config.name}; try again in ${Math.ceil(lease.busyForMs / 1000)} s`);
      try {
        await this.refreshShared();
        const token = this.state.token;
        if (token) {
          await this.limited(() => provider.revoke(this.credentials, token.accessToken));
          bus.emit('token.revoked', { account: this.ref, tokenId: tokenId(token.accessToken) });
        }
        const removedFiles = await sinks.clear(config.name);
        const { lastAttempt, issuances, revision } = this.state;
        this.state = emptyState(config);
        // The spacing still counts from the last request, revoked or not; the issuance count goes on.
        this.state.lastAttempt = lastAttempt;
        this.state.issuances = issuances;
        this.state.revision = revision + 1;
        await store.save(this.state);
        return { revoked: token !== undefined && token !== null, removedFiles };
      } finally {
        await lease.release();
      }
    });
  }

  private async publish(cause: 'token' | 'start'): Promise<void> {
    const view = this.tokenView();
    if (view) await this.deps.sinks.publish(this.deps.config.name, view, cause);
  }

  private tokenView(): TokenView | undefined {
    const token = this.state.token;
    if (!token) return undefined;
    return {
      accessToken: token.accessToken,
      tokenType: token.tokenType,
      expiresAt: token.expiresAt,
      issuedAt: token.issuedAt,
      raw: token.raw,
      approvalKey: this.state.approvalKey?.key,
    };
  }

  /**
   * Saves the state; when the disk refuses, the state stays in memory, the failure is reported, and the save
   * is tried again at the next tick. The in-memory token keeps serving the sinks meanwhile.
   */
  private async persist(persistence: Persistence = 'shared'): Promise<void> {
    const { store } = this.deps;
    try {
      if (persistence === 'shared') {
        this.state.revision += 1;
        await store.save(this.state);
      } else {
        await store.saveLocal(this.state);
      }
      this.stateDirty = false;
    } catch (error) {
      this.stateDirty = true;
      const reason = error instanceof StateError ? error.code : 'write_failed';
      this.deps.bus.emit('state.error', { account: this.ref, reason, message: describeError(error) });
      // The shared store is away: the local copy, newer than the shared one, is offered once it is back.
      if (persistence === 'shared' && store.shared) await store.saveLocal(this.state).then(() => (this.stateDirty = false), () => undefined);
    }
  }

  private async flushState(): Promise<void> {
    if (this.stateDirty) await this.persist('local');
  }

  /** A copy of the state and what the policy makes of it now. */
  snapshot(): AccountSnapshot {
    return snapshotOf(this.deps.config, structuredClone(this.state), this.deps.clock.now());
  }

  /**
   * The same without the copy, for readers that only read (metrics at every scrape, /status, alerts): at a
   * thousand accounts the copies would cost more than the rest of a scrape.
   */
  view(): AccountSnapshot {
    const snapshot = snapshotOf(this.deps.config, this.state, this.deps.clock.now());
    const { store } = this.deps;
    // Due, but a replica cut off from its peers issues nothing (see issue()): say what it really waits for.
    if (snapshot.waitingFor === 'issuance' && store.shared && !store.health().up) return { ...snapshot, waitingFor: 'store_unavailable' };
    return snapshot;
  }
}
