/**
 * One Kiwoom account's shared session (docs/brokers.md#kiwoom-real-time-session): the sidecar logs in upstream
 * with its current token, and its clients' registrations share that one login.
 *
 * - Clients' `grp_no` are theirs alone: upstream every registration lives in the sidecar's own group, always with
 *   `refresh: "1"`, so no client's REG can drop what another registered; a client's `refresh: "0"` drops only that
 *   client's registrations (in every group of its own, as the broker does for a session).
 * - A REG is answered once every (type, item) in it is live upstream (at once when all are); a REMOVE at once, the
 *   broker told only when the last client lets go. Kiwoom's answers name no request, so upstream requests go one
 *   at a time, each waiting for its answer.
 * - PING is echoed as received. A SYSTEM R10001 (another login took the key) ends the session, and the sidecar
 *   waits `afterReplaced` before logging in again: an alert, not a reconnect war. A login refused (the token died)
 *   has the lifecycle prove the token and re-issue it within the rules; the next session logs in with the new one.
 *   A renewed token is presented on the open session (LOGIN again), without a new connection.
 */
import type { KiwoomCarrier, KiwoomReceiver } from './carriers';
import type { ClientConnection } from './client';
import { KIWOOM_MAX_REGISTRATIONS } from './limits';
import { KIWOOM_LOGIN_OK, KIWOOM_REFUSALS, kiwoomAnswer, kiwoomChange, kiwoomLogin, readKiwoomUpstream, type Pair } from './kiwoom-wire';
import type { Entry, RegistrationBook } from './registrations';
import { SharedSession, type SessionContext } from './session';
import { Upstream, type UpstreamHooks } from './upstream';

/** The sidecar's upstream group: one, since the session holds at most 100 pairs (a client library's per-group check). */
const UPSTREAM_GROUP = '1';

/** The socket of a Kiwoom session at the broker: the one of a single sidecar, or of the replica holding the key (holder.ts). */
export class KiwoomUpstream extends Upstream implements KiwoomCarrier {
  /** The token the session logged in with, and whether a LOGIN is awaiting its answer. */
  private loggedInWith: string | undefined;
  private loginPending: string | undefined;

  constructor(
    private readonly session: KiwoomReceiver,
    private readonly ctx: Pick<SessionContext, 'account' | 'clock' | 'random' | 'policy'>,
    hooks: UpstreamHooks,
  ) {
    super(ctx.clock, ctx.random, ctx.policy, `${ctx.account.config.websocketUrl}/api/dostk/websocket`, hooks);
  }

  protected credential(): Promise<string | { retryAfterMs: number }> {
    const token = this.ctx.account.token();
    return Promise.resolve(token ? token.accessToken : { retryAfterMs: 5_000 });
  }

  protected opened(credential: string): void {
    this.loggedInWith = undefined;
    this.login(credential);
  }

  /** The account's token changed since the login (a renewal): presented on the open session. */
  followToken(): void {
    const token = this.ctx.account.token()?.accessToken;
    if (this.isReady && token !== undefined && token !== this.loggedInWith && this.loginPending === undefined) this.login(token);
  }

  private login(token: string): void {
    this.loginPending = token;
    this.sendNow(kiwoomLogin(token));
  }

  protected received(data: Buffer, text: string): void {
    const message = readKiwoomUpstream(text);
    if (message.kind === 'ping') {
      this.sendNow(text);
    } else if (message.kind === 'real') {
      this.session.real(message.pairs, data);
    } else if (message.kind === 'system') {
      this.end(message.code === 'R10001' ? 'replaced' : 'closed', `SYSTEM ${message.code.slice(0, 20)}`);
    } else if (message.kind === 'answer' && message.trnm === 'LOGIN' && this.loginPending !== undefined) {
      const token = this.loginPending;
      this.loginPending = undefined;
      if (message.ok) {
        this.loggedInWith = token;
        this.session.loggedIn(text);
        this.markReady();
        return;
      }
      // The token died at the broker: the lifecycle proves it and re-issues within the rules, once however often asked.
      void this.ctx.account.tokenRefused(token).catch(() => undefined);
      this.end('login_failed', `LOGIN refused (return_code ${message.returnCode})`);
    } else if (message.kind === 'answer') {
      this.takeAnswer(text);
    }
  }

  send(trnm: 'REG' | 'REMOVE', pairs: Pair[], answered: (text: string) => void): void {
    this.enqueue({ text: kiwoomChange(trnm, UPSTREAM_GROUP, pairs), answered });
  }
}

/** A client's REG waiting for the broker: the entries not live yet. */
interface PendingAnswer {
  client: ClientConnection;
  entries: Set<Entry<ClientConnection>>;
}

export class KiwoomSession extends SharedSession implements KiwoomReceiver {
  protected readonly upstream: KiwoomCarrier;
  /** The broker's LOGIN answer, given to clients as their own (it says, for one, whether SOR is on). */
  loginAnswer = KIWOOM_LOGIN_OK;
  /** Per client: each (type, item) it holds, and in which of its groups. */
  private readonly holdings = new Map<ClientConnection, Map<string, { pair: Pair; groups: Set<string> }>>();
  private pending: PendingAnswer[] = [];

  constructor(ctx: SessionContext) {
    super(ctx, KIWOOM_MAX_REGISTRATIONS);
    this.upstream = ctx.relay?.kiwoom(this, this.book, this.upstreamHooks()) ?? new KiwoomUpstream(this, ctx, this.upstreamHooks());
  }

  loggedIn(answer: string): void {
    this.loginAnswer = answer;
  }

  /** Each second: a renewed token is presented on the open session. */
  tick(): void {
    this.upstream.followToken();
  }

  change(client: ClientConnection, trnm: 'REG' | 'REMOVE', group: string, refresh: boolean, pairs: Pair[]): void {
    let held = this.holdings.get(client);
    if (!held) {
      held = new Map();
      this.holdings.set(client, held);
    }
    if (trnm === 'REMOVE') {
      for (const pair of pairs) this.release(client, held, pair, group);
      this.answer(client, kiwoomAnswer('REMOVE'));
      this.reconcile();
      return;
    }
    if (!this.book.fits(pairs)) {
      this.answer(client, kiwoomAnswer('REG', KIWOOM_REFUSALS.budgetFull(this.book.limit)));
      this.refused(client, 'budget_full', '1517');
      return;
    }
    const wanted = new Set(pairs.map(pairName));
    if (!refresh) for (const { pair } of [...held.values()]) if (!wanted.has(pairName(pair))) this.release(client, held, pair, undefined);
    const waitingFor = new Set<Entry<ClientConnection>>();
    for (const pair of pairs) {
      const name = pairName(pair);
      const holding = held.get(name) ?? { pair, groups: new Set<string>() };
      holding.groups.add(group);
      held.set(name, holding);
      if (this.book.add(client, pair.id, pair.key) === 'waiting') waitingFor.add(this.book.find(pair.id, pair.key)!);
    }
    if (waitingFor.size === 0) this.answer(client, kiwoomAnswer('REG'));
    else this.pending.push({ client, entries: waitingFor });
    this.reconcile();
  }

  /** Drops one group's hold of a pair (every group when `group` is undefined); the pair goes when no group holds it. */
  private release(client: ClientConnection, held: Map<string, { pair: Pair; groups: Set<string> }>, pair: Pair, group: string | undefined): void {
    const name = pairName(pair);
    const holding = held.get(name);
    if (!holding) return;
    if (group === undefined) holding.groups.clear();
    else holding.groups.delete(group);
    if (holding.groups.size > 0) return;
    held.delete(name);
    this.book.remove(client, pair.id, pair.key);
  }

  protected sendWork(): void {
    sendKiwoomWork(
      this.upstream,
      this.book,
      (entries, text) => this.registered(entries, text),
      () => this.reconcile(),
    );
  }

  private registered(entries: Array<Entry<ClientConnection>>, text: string): void {
    const ok = readKiwoomUpstream(text);
    const accepted = ok.kind === 'answer' && ok.ok;
    for (const entry of entries) {
      if (entry.upstream !== 'registering') continue;
      if (accepted) this.book.confirmed(entry);
      else for (const client of this.book.refused(entry)) this.refused(client, 'broker', ok.kind === 'answer' ? String(ok.returnCode) : '');
    }
    const still: PendingAnswer[] = [];
    for (const waiting of this.pending) {
      const failed = entries.some((e) => waiting.entries.has(e)) && !accepted;
      for (const entry of entries) waiting.entries.delete(entry);
      if (failed) this.answer(waiting.client, Buffer.from(text));
      else if (waiting.entries.size === 0) this.answer(waiting.client, kiwoomAnswer('REG'));
      else still.push(waiting);
    }
    this.pending = still;
    this.reconcile();
  }

  /** A REAL push: to every answered subscriber of any (type, item) in it, whole, as the broker sent it. */
  real(pairs: Pair[], data: Buffer): void {
    const targets = new Set<ClientConnection>();
    for (const { id, key } of pairs) {
      const entry = this.book.find(id, key);
      if (entry) for (const client of entry.subscribers) if (!entry.waiting.has(client)) targets.add(client);
    }
    this.fanOut(data, targets);
  }

  protected override forgetClient(client: ClientConnection): void {
    this.holdings.delete(client);
    this.pending = this.pending.filter((p) => p.client !== client);
  }
}

const pairName = (pair: Pair): string => `${pair.id}\n${pair.key}`;
/**
 * A book's work sent to Kiwoom (by a session or the deployment's holder): one REG of every entry to register, its
 * answer handed to `registered`; one REMOVE of every entry to let go, released in the book when answered.
 */
export function sendKiwoomWork<C>(
  carrier: KiwoomCarrier,
  book: RegistrationBook<C>,
  registered: (entries: Entry<C>[], text: string) => void,
  reconcile: () => void,
): void {
  const work = book.work();
  const registering = work.filter((w) => w.register).map((w) => w.entry);
  const releasing = work.filter((w) => !w.register).map((w) => w.entry);
  if (registering.length > 0) carrier.send('REG', registering.map(pairOf), (text) => registered(registering, text));
  if (releasing.length > 0) {
    carrier.send('REMOVE', releasing.map(pairOf), () => {
      for (const entry of releasing) book.released(entry);
      reconcile();
    });
  }
}

/** A book entry as the (type, item) pair of a REG or REMOVE. */
export const pairOf = (entry: Entry<unknown>): Pair => ({ id: entry.id, key: entry.key });
