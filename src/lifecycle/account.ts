import type { AccountConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import { Serial } from '../core/serial';
import type { Limiter } from '../core/limiter';
import type { SecretRegistry } from '../core/secrets';
import type { TokenProvider } from '../providers/types';
import type { SinkSupervisor } from '../sinks/supervisor';
import { emptyState, tokenId, type AccountState } from '../store/account-state';
import type { StateStore } from '../store/state-store';
import type { AccountContext } from './account-context';
import { adoptedRecord, chooseAdoption } from './adopt';
import { ApprovalKeys } from './approval-key';
import { Issuance, type RenewOutcome } from './issuance';
import { NEVER, correctedForClockJumpBack, decideNow } from './policy';
import { TokenProof } from './proof';
import { SharedStateSync } from './shared-sync';
import { snapshotOf, tokenViewOf, type AccountSnapshot } from './views';
import { StateKeeper } from './state-keeper';
import { stateNotBelievable } from './trust';

/**
 * One account's token, from start to revoke: decides with the pure policy, then hands the doing to its parts
 * (issuance, proof, approval key, shared-store sync, the state keeper) and reports through events. `tick()`
 * does whatever is due and says when it next has something to do; the loop that calls it is elsewhere, so
 * tests drive it step by step on a fake clock.
 */

interface AccountLifecycleDeps {
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

export class AccountLifecycle {
  readonly ref: AccountRef;
  private readonly kept: StateKeeper;
  private readonly account: AccountContext;
  private readonly serial = new Serial();
  private readonly sync: SharedStateSync;
  private readonly issuance: Issuance;
  private readonly proof: TokenProof;
  private readonly approvalKeys: ApprovalKeys;
  private unsubscribe: () => void = () => undefined;

  constructor(private readonly deps: AccountLifecycleDeps) {
    const { config, limiter } = deps;
    this.ref = { name: config.name, provider: config.provider, env: config.env };
    this.kept = new StateKeeper({ ref: this.ref, store: deps.store, bus: deps.bus, secrets: deps.secrets }, emptyState(config));
    const account: AccountContext = (this.account = {
      config,
      ref: this.ref,
      provider: deps.provider,
      store: deps.store,
      bus: deps.bus,
      clock: deps.clock,
      random: deps.random ?? Math.random,
      kept: this.kept,
      credentials: () => ({ appKey: config.appKey, appSecret: config.appSecret }),
      limited: (call) => (limiter ? limiter.run(call) : call()),
      publish: (cause) => this.publish(cause),
    });
    this.sync = new SharedStateSync(account);
    this.approvalKeys = new ApprovalKeys(account);
    this.issuance = new Issuance(account, this.sync, this.approvalKeys);
    this.proof = new TokenProof(account);
  }

  get config(): AccountConfig {
    return this.deps.config;
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
      let stored = loaded.state;
      const distrust = stored && stateNotBelievable(stored, config, clock.now());
      if (distrust) {
        // Another app key's state (the configured key changed), or a token no broker answer could have given:
        // neither its token nor its spacing is this account's. The spacing still runs from the file's last write.
        bus.emit('state.error', { account: this.ref, reason: 'set_aside', message: `the stored state of ${config.name} was set aside: ${distrust}` });
        stored = undefined;
      }
      const state = stored ?? emptyState(config);
      if (!stored && loaded.lastWriteAt !== undefined) {
        // The lost state may have recorded an attempt: count the spacing from its last write, to be safe.
        state.lastAttempt = { at: loaded.lastWriteAt, outcome: 'pending' };
      }
      if (!state.token) await this.adoptFromSinks(state, clock.now());
      this.kept.take(state);
      bus.emit('state.loaded', { account: this.ref, issuances: state.issuances });
      await this.kept.save('local');
      await this.sync.offerAtStart(loaded);
      if (this.kept.state.token) await this.publish('start');
      this.unsubscribe = this.sync.follow(this.serial);
    });
  }

  /** Stops listening to the shared store (the account was removed by a config reload, or the sidecar stops). */
  stop(): void {
    this.unsubscribe();
  }

  private async adoptFromSinks(state: AccountState, now: number): Promise<void> {
    const { sinks, config, bus } = this.deps;
    const chosen = chooseAdoption(await sinks.tokensOnDisk(config.name), config, now);
    if (!chosen) return;
    state.token = adoptedRecord(chosen, config, now, this.account.random());
    bus.emit('token.adopted', {
      account: this.ref,
      from: `${chosen.sink} (${chosen.path})`,
      tokenId: tokenId(chosen.token.accessToken),
      expiresAt: chosen.expiresAt,
    });
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
    await this.kept.saveIfDirty();
    await this.sync.refresh();
    const now = clock.now();
    const corrected = correctedForClockJumpBack(this.kept.state, now);
    if (corrected) {
      this.kept.state = corrected;
      await this.kept.save('local');
    }
    const decision = decideNow(config, this.kept.state, now, force, this.issuance.ownAttempt());
    if (decision.kind === 'issue') {
      const outcome = await this.issuance.issue(decision.why, force);
      return { nextWakeAt: outcome.result === 'wait' ? outcome.until : clock.now(), outcome };
    }
    const waitOutcome: RenewOutcome = { result: 'wait', until: decision.until, why: decision.why };
    if (manual) return { nextWakeAt: clock.now(), outcome: waitOutcome };

    const proofAt = this.proof.nextAt();
    if (proofAt !== undefined && proofAt <= now) {
      await this.proof.prove();
      return { nextWakeAt: clock.now(), outcome: waitOutcome };
    }
    const approvalAt = this.approvalKeys.nextAt();
    if (approvalAt !== undefined && approvalAt <= now) {
      await this.approvalKeys.fetchDue();
      return { nextWakeAt: clock.now(), outcome: waitOutcome };
    }
    const next = Math.min(decision.until, proofAt ?? NEVER, approvalAt ?? NEVER);
    return { nextWakeAt: next, outcome: waitOutcome };
  }

  /** The token the gateway sends with its clients' calls: the current one, unless known dead or expired. */
  gatewayToken(): { accessToken: string; expiresAt: number } | undefined {
    const { token, invalidated } = this.kept.state;
    if (!token || invalidated || token.expiresAt <= this.deps.clock.now()) return undefined;
    return { accessToken: token.accessToken, expiresAt: token.expiresAt };
  }

  /**
   * A call through the gateway was answered "token expired or invalid". The answer is not believed as such: the
   * token is proven once (calls that raced on it wait for that one proof), and only a token proven dead is
   * re-issued, within the rules. Whatever the clients do, this costs at most what the policy allows.
   */
  tokenRefused(accessToken: string): Promise<void> {
    return this.serial.run(async () => {
      const token = this.kept.state.token;
      if (!token || token.accessToken !== accessToken) return; // replaced meanwhile
      if (!this.kept.state.invalidated) await this.proof.prove();
      if (this.kept.state.invalidated) await this.step(false);
    });
  }

  /**
   * The WebSocket approval key for a gateway client (KIS). Within the backoff of a failed attempt the answer is at
   * once, without waiting for the account's other work: a client looping on Approval queues nothing here.
   */
  approvalKeyForGateway(): Promise<{ key: string } | { retryAfterMs: number }> {
    const held = this.approvalKeys.current();
    if (held) return Promise.resolve({ key: held });
    const retryAfterMs = this.approvalKeys.retryInMs();
    if (retryAfterMs > 0) return Promise.resolve({ retryAfterMs });
    return this.serial.run(() => this.approvalKeys.forGateway());
  }

  /**
   * Revokes the token at the broker, then forgets it: the sink files are removed and the token, its approval key,
   * proofs and failures leave the state. The state file stays with what must outlive the token: when a token was
   * last asked for (the spacing holds for the next start, as after any issuance) and how many were issued (the
   * counter goes on). Removing the file instead would let the next start ask again at once.
   */
  revoke(): Promise<{ revoked: boolean; removedFiles: string[] }> {
    return this.serial.run(async () => {
      const { provider, store, sinks, bus, config } = this.deps;
      const lease = await store.acquireIssuance(config.name);
      if ('busyForMs' in lease) throw new Error(`another replica is issuing for ${config.name}; try again in ${Math.ceil(lease.busyForMs / 1000)} s`);
      try {
        await this.sync.refresh();
        const token = this.kept.state.token;
        if (token) {
          await this.account.limited(() => provider.revoke(this.account.credentials(), token.accessToken));
          bus.emit('token.revoked', { account: this.ref, tokenId: tokenId(token.accessToken) });
        }
        const removedFiles = await sinks.clear(config.name);
        const { lastAttempt, issuances, revision } = this.kept.state;
        // The spacing still counts from the last request, revoked or not; the issuance count goes on.
        this.kept.state = { ...emptyState(config), lastAttempt, issuances, revision };
        await this.kept.save('shared', 'throw');
        return { revoked: token !== undefined && token !== null, removedFiles };
      } finally {
        await lease.release();
      }
    });
  }

  private async publish(cause: 'token' | 'start'): Promise<void> {
    const view = tokenViewOf(this.kept.state);
    if (view) await this.deps.sinks.publish(this.deps.config.name, view, cause);
  }

  /**
   * The state and what the policy makes of it now, for readers that only read (metrics at every scrape,
   * /status, alerts). Not a copy: at a thousand accounts the copies would cost more than the rest of a scrape.
   */
  snapshot(): AccountSnapshot {
    const snapshot = snapshotOf(this.deps.config, this.kept.state, this.deps.clock.now(), this.issuance.ownAttempt());
    const { store } = this.deps;
    // Due, but a replica cut off from its peers issues nothing (see Issuance): say what it really waits for.
    if (snapshot.waitingFor === 'issuance' && store.shared && !store.health().up) return { ...snapshot, waitingFor: 'store_unavailable' };
    return snapshot;
  }
}
