/**
 * On the replica that holds the lease (holder-lease.ts): the deployment's one session at the broker, and its
 * registrations as the union of what every replica's clients want (relay-wire.ts), counted against the broker's
 * limit in the same registration book a single sidecar uses, each replica standing where a client stands there.
 *
 * - A want that fits is registered at the broker; one past the limit is refused to the replicas that asked, and never
 *   sent. A want already live is answered at once, to the replica that asked; the broker's answers go to the
 *   replicas waiting for them.
 * - A registration no live replica wants any more (its clients left, or the replica died and its wants expired)
 *   is unregistered at the broker; the broker's answers to unregistrations concern the holder alone.
 * - The broker's frames go to every replica as they came; each fans out to its own clients.
 *
 * What is the same for every broker is here (DeploymentHolder); the broker's words are its subclass's: KIS's below
 * (OPSP0008 past the 41, its answers byte for byte), Kiwoom's in kiwoom-relay.ts.
 */
import { isFillTr, KIS_ANSWERS, KIS_CODES, kisControl, type KisCipher } from './kis-wire';
import type { KisControlMessage, KisDataMessage, KisReceiver } from './carriers';
import { KisUpstream } from './kis-session';
import { KIS_MAX_REGISTRATIONS } from './limits';
import { name, RegistrationBook, type Entry } from './registrations';
import type { HolderMessage, Want } from './relay-wire';
import type { SessionContext } from './session';
import type { Upstream, UpstreamHooks } from './upstream';
import type { RealtimeConnectReason, RealtimeEndReason, RealtimeUpstreamState } from '../core/realtime-vocabulary';

export interface HolderDeps {
  ctx: Pick<SessionContext, 'account' | 'clock' | 'random' | 'policy' | 'bus'>;
  /** When a connection may open (the lease's proof and handover). */
  gate(): number;
  /** To every replica (this one in-process, the others through Redis). */
  publish(message: HolderMessage): void;
  /** The lease was taken over from another replica: this holder's first session is a `takeover`, not a `first`. */
  takeover: boolean;
}

export abstract class DeploymentHolder {
  protected readonly book: RegistrationBook<string>;
  protected abstract readonly upstream: Upstream;
  /** Sessions opened by this holder: a replica that sees a new number knows its registrations were lost. */
  protected session = 0;
  private stateNow: { state: RealtimeUpstreamState; reason: RealtimeEndReason | null } = { state: 'idle', reason: null };
  /** Per replica and registration: the ask last answered (or being answered by the broker). */
  private readonly asks = new Map<string, number>();

  constructor(
    protected readonly deps: HolderDeps,
    limit: number,
  ) {
    this.book = new RegistrationBook<string>(limit);
  }

  /** The hooks of the holder's upstream: a lost session resets the book, each state goes to every replica. */
  protected hooks(): UpstreamHooks {
    const { ctx } = this.deps;
    return {
      ready: () => this.reconcile(),
      lost: () => {
        this.book.lost();
        this.asks.clear();
        this.sessionLost();
      },
      state: (state, reason) => {
        if (state === 'open') this.session++;
        this.stateNow = { state, reason: reason ?? null };
        this.announce();
      },
      connecting: (reason: RealtimeConnectReason) =>
        ctx.bus.emit('realtime.connect', {
          account: ctx.account.ref,
          // Nothing failed before this holder's first session, but the deployment's session was another replica's.
          reason: reason === 'first' && this.deps.takeover && this.session === 0 ? 'takeover' : reason,
        }),
      gate: () => this.deps.gate(),
    };
  }

  /** The session's state to every replica: on each change, and every second for those that joined or blinked. */
  announce(): void {
    this.deps.publish({ kind: 'session', session: this.session, ...this.stateNow });
  }

  /** Every live replica's wants (the expired ones left out): the book follows their union. */
  setWants(wants: ReadonlyMap<string, ReadonlyMap<string, Want>>): void {
    for (const entry of [...this.book.all()]) {
      for (const replica of [...entry.subscribers]) {
        if (!wants.get(replica)?.has(name(entry.id, entry.key))) {
          this.book.remove(replica, entry.id, entry.key);
          this.asks.delete(`${replica}\n${name(entry.id, entry.key)}`);
        }
      }
    }
    for (const replica of [...wants.keys()].sort()) {
      for (const want of wants.get(replica)!.values()) this.want(replica, want);
    }
    this.reconcile();
  }

  private want(replica: string, want: Want): void {
    const askKey = `${replica}\n${name(want.id, want.key)}`;
    const fresh = this.asks.get(askKey) !== want.ask;
    this.asks.set(askKey, want.ask);
    const outcome = this.book.add(replica, want.id, want.key);
    if (outcome === 'full') {
      if (fresh) this.refuseFull(replica, want);
      return;
    }
    const entry = this.book.find(want.id, want.key)!;
    if ((outcome === 'live' || (outcome === 'held' && fresh)) && entry.upstream === 'live') this.answerLive(replica, entry);
  }

  /** A want past the deployment's limit, refused in the broker's words to the replica that asked. */
  protected abstract refuseFull(replica: string, want: Want): void;
  /** A want already live at the broker, answered at once to the replica that asked. */
  protected abstract answerLive(replica: string, entry: Entry<string>): void;
  /** Sends the book's work to the broker, in the broker's requests. */
  protected abstract sendWork(): void;
  /** The session ended: what the broker gave it (a KIS cipher) is gone with it. */
  protected sessionLost(): void {}

  /** Every second: a Kiwoom holder presents a renewed token on its open session. */
  tick(): void {}

  protected answer(to: string[], text: string): void {
    this.deps.publish({ kind: 'answer', session: this.session, to, data: Buffer.from(text, 'utf8') });
  }

  protected frame(data: Buffer): void {
    this.deps.publish({ kind: 'frame', session: this.session, data });
  }

  protected reconcile(): void {
    this.upstream.setWanted(this.book.size > 0);
    if (this.upstream.isReady) this.sendWork();
  }

  /** Closes the session: at shutdown, or because the lease is no longer this replica's. */
  stop(reason: 'shutdown' | 'lease_lost'): void {
    this.upstream.stop(reason);
  }
}

export class KisHolder extends DeploymentHolder implements KisReceiver {
  protected readonly upstream: KisUpstream;
  private cipher: KisCipher | undefined;

  constructor(deps: HolderDeps) {
    super(deps, KIS_MAX_REGISTRATIONS);
    this.upstream = new KisUpstream(this, deps.ctx, this.hooks());
  }

  protected refuseFull(replica: string, want: Want): void {
    const note = `the deployment's ${this.book.limit} registrations are in use`;
    this.answer([replica], kisControl(KIS_ANSWERS.maxSubscriptions, want.id, want.key, isFillTr(want.id), undefined, note));
  }

  protected answerLive(replica: string, entry: Entry<string>): void {
    this.answer([replica], kisControl(KIS_ANSWERS.subscribed, entry.id, entry.key, entry.encrypted, this.cipher));
  }

  protected sendWork(): void {
    for (const { entry, register } of this.book.work()) this.upstream.send(entry, register);
  }

  protected override sessionLost(): void {
    this.cipher = undefined;
  }

  control(message: KisControlMessage, data: Buffer): void {
    if (message.output) this.cipher = message.output;
    const entry = this.book.answered(message.trId, message.trKey);
    if (entry === 'released') this.reconcile();
    if (entry === undefined || entry === 'released') return;
    if (message.code === KIS_CODES.subscribed || message.code === KIS_CODES.already) {
      entry.encrypted = message.encrypt || isFillTr(entry.id);
      this.book.confirmed(entry);
      // The broker's own answer, to every replica: those waiting for it (and, after a reconnect, every holder of a
      // fill notice, whose key changed) take it; the others ignore it.
      const own = message.code === KIS_CODES.subscribed && (message.output !== undefined || !entry.encrypted);
      this.frame(own ? data : Buffer.from(kisControl(KIS_ANSWERS.subscribed, entry.id, entry.key, entry.encrypted, this.cipher), 'utf8'));
    } else {
      this.answer(this.book.refused(entry), data.toString('utf8'));
    }
    this.reconcile();
  }

  data(_message: KisDataMessage, data: Buffer): void {
    this.frame(data);
  }
}
