/**
 * Kiwoom across replicas: what differs from KIS on either side of the relay (relay-link.ts, holder.ts), because
 * Kiwoom's answers name no request. A second LOGIN on a key knocks the first session off (R10001), so the
 * deployment's one session is the lease holder's, as for KIS; the holder's login answer, REG answers and REAL
 * pushes reach the replicas through the relay.
 *
 * - The holder registers the union of every replica's (type, item) pairs in its own group with `refresh: "1"`,
 *   within the 100 the endpoint allows a session (limits.ts), and answers each replica's REG naming the pairs it
 *   concerns (kiwoomPairsAnswer): live ones at once, the others when the broker answered, a pair past the 100
 *   refused in the endpoint's words, the broker's refusal as it came.
 * - A replica's REG is answered to its session once every pair in it is live at the holder, or refused as a whole
 *   when any is refused (the broker answers a REG as a whole too); a REMOVE at once, the holder letting a pair go
 *   when no replica wants it any more.
 */
import type { KiwoomCarrier, KiwoomReceiver } from './carriers';
import { KiwoomUpstream, pairOf, sendKiwoomWork } from './kiwoom-session';
import { KIWOOM_REFUSALS, kiwoomAnswer, kiwoomPairsAnswer, readKiwoomUpstream, type Pair } from './kiwoom-wire';
import { KIWOOM_MAX_REGISTRATIONS } from './limits';
import { DeploymentHolder, type HolderDeps } from './holder';
import { name, type Entry } from './registrations';
import { RelayLink } from './relay-link';
import type { Want } from './relay-wire';

/** A replica's REG waiting for the holder: the pairs not answered yet. */
interface WaitingReg {
  pairs: Set<string>;
  answered: (text: string) => void;
}

export class KiwoomRelayLink extends RelayLink<KiwoomReceiver> implements KiwoomCarrier {
  private waiting: WaitingReg[] = [];

  send(trnm: 'REG' | 'REMOVE', pairs: Pair[], answered: (text: string) => void): void {
    if (trnm === 'REG') {
      this.waiting.push({ pairs: new Set(pairs.map((p) => name(p.id, p.key))), answered });
      this.asked(pairs);
      return;
    }
    this.forgot(pairs);
    // After the book's own step, as an answer from the broker would come.
    queueMicrotask(() => answered(kiwoomAnswer('REMOVE')));
  }

  /** Only the holder's own socket logs in. */
  followToken(): void {}

  protected deliver(data: Buffer): void {
    const text = data.toString('utf8');
    const message = readKiwoomUpstream(text);
    if (message.kind === 'real') {
      this.lastFrameAt = this.clock.now();
      this.receiver.real(message.pairs, data);
    } else if (message.kind === 'answer' && message.trnm === 'LOGIN' && message.ok) {
      this.receiver.loggedIn(text);
    } else if (message.kind === 'answer' && message.trnm === 'REG') {
      this.settle(new Set(message.pairs.map((p) => name(p.id, p.key))), message.ok ? undefined : message);
    }
  }

  /** The holder answered these pairs: REGs all of whose pairs are live are answered, any refused one refuses its REG. */
  private settle(pairs: Set<string>, refusal: { returnCode: number; returnMsg: string } | undefined): void {
    const still: WaitingReg[] = [];
    const done: Array<() => void> = [];
    for (const reg of this.waiting) {
      const concerned = [...reg.pairs].some((p) => pairs.has(p));
      if (concerned && refusal) {
        done.push(() => reg.answered(kiwoomAnswer('REG', refusal)));
        continue;
      }
      for (const p of pairs) reg.pairs.delete(p);
      if (reg.pairs.size === 0) done.push(() => reg.answered(kiwoomAnswer('REG')));
      else still.push(reg);
    }
    this.waiting = still;
    for (const answer of done) answer();
  }

  protected override sessionLost(): void {
    // Their pairs are registered again (new asks) on the next session: the session's book replays them.
    this.waiting = [];
  }
}

export class KiwoomHolder extends DeploymentHolder implements KiwoomReceiver {
  protected readonly upstream: KiwoomUpstream;

  constructor(deps: HolderDeps) {
    super(deps, KIWOOM_MAX_REGISTRATIONS);
    this.upstream = new KiwoomUpstream(this, deps.ctx, this.hooks());
  }

  override tick(): void {
    this.upstream.followToken();
  }

  /** The login's answer to every replica: their clients are given it as their own. */
  loggedIn(answer: string): void {
    this.frame(Buffer.from(answer, 'utf8'));
  }

  real(_pairs: Pair[], data: Buffer): void {
    this.frame(data);
  }

  protected refuseFull(replica: string, want: Want): void {
    this.answer([replica], kiwoomPairsAnswer([{ id: want.id, key: want.key }], KIWOOM_REFUSALS.budgetFull(this.book.limit, 'deployment')));
  }

  protected answerLive(replica: string, entry: Entry<string>): void {
    this.answer([replica], kiwoomPairsAnswer([pairOf(entry)]));
  }

  protected sendWork(): void {
    sendKiwoomWork(
      this.upstream,
      this.book,
      (entries, text) => this.registered(entries, text),
      () => this.reconcile(),
    );
  }

  /** The broker's answer to a REG: each replica that wanted its pairs is told which, in one answer. */
  private registered(entries: Array<Entry<string>>, text: string): void {
    // Only an answer reaches here (the upstream matches answers to requests in turn).
    const answer = readKiwoomUpstream(text);
    const refusal = answer.kind === 'answer' && !answer.ok ? answer : undefined;
    const told = new Map<string, Pair[]>();
    for (const entry of entries) {
      if (entry.upstream !== 'registering') continue;
      const replicas = refusal ? this.book.refused(entry) : [...entry.subscribers];
      if (!refusal) this.book.confirmed(entry);
      for (const replica of replicas) told.set(replica, [...(told.get(replica) ?? []), pairOf(entry)]);
    }
    for (const [replica, pairs] of told) this.answer([replica], kiwoomPairsAnswer(pairs, refusal));
    this.reconcile();
  }
}
