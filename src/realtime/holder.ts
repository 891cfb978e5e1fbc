/**
 * On the replica that holds the lease (holder-lease.ts): the deployment's one KIS session at the broker, and its
 * registrations as the union of what every replica's clients want (relay-wire.ts), counted against the broker's 41
 * in the same registration book a single sidecar uses, each replica standing where a client stands there.
 *
 * - A want that fits is registered at the broker; one that would be the 42nd is answered OPSP0008 to the replicas
 *   that asked, and never sent. A want already live is answered at once (with the session's AES key and iv), to the
 *   replica that asked; the broker's own answers go to every replica (the ones waiting for it take it).
 * - A registration no live replica wants any more (its clients left, or the replica died and its wants expired)
 *   is unregistered at the broker; the broker's answers to unregistrations concern the holder alone.
 * - The broker's frames go to every replica as they came; each fans out to its own clients.
 */
import { isFillTr, KIS_ANSWERS, KIS_CODES, kisControl, type KisCipher } from './kis-wire';
import type { KisControlMessage, KisDataMessage, KisReceiver } from './carriers';
import { KisUpstream } from './kis-session';
import { KIS_MAX_REGISTRATIONS } from './limits';
import { name, RegistrationBook } from './registrations';
import type { HolderMessage, Want } from './relay-wire';
import type { SessionContext } from './session';
import type { RealtimeConnectReason, RealtimeEndReason, RealtimeUpstreamState } from '../core/realtime-vocabulary';

interface HolderDeps {
  ctx: Pick<SessionContext, 'account' | 'clock' | 'random' | 'policy' | 'bus'>;
  /** When a connection may open (the lease's proof and handover). */
  gate(): number;
  /** To every replica (this one in-process, the others through Redis). */
  publish(message: HolderMessage): void;
}

export class KisHolder implements KisReceiver {
  private readonly book = new RegistrationBook<string>(KIS_MAX_REGISTRATIONS);
  private readonly upstream: KisUpstream;
  private cipher: KisCipher | undefined;
  /** Sessions opened by this holder: a replica that sees a new number knows its registrations were lost. */
  private session = 0;
  private stateNow: { state: RealtimeUpstreamState; reason: RealtimeEndReason | null } = { state: 'idle', reason: null };
  /** Per replica and registration: the ask last answered (or being answered by the broker). */
  private readonly asks = new Map<string, number>();

  constructor(private readonly deps: HolderDeps) {
    const { ctx } = deps;
    this.upstream = new KisUpstream(this, ctx, {
      ready: () => this.reconcile(),
      lost: () => {
        this.book.lost();
        this.cipher = undefined;
        this.asks.clear();
      },
      state: (state, reason) => {
        if (state === 'open') this.session++;
        this.stateNow = { state, reason: reason ?? null };
        this.announce();
      },
      connecting: (reason: RealtimeConnectReason) => ctx.bus.emit('realtime.connect', { account: ctx.account.ref, reason }),
      gate: () => deps.gate(),
    });
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
    const encrypt = isFillTr(want.id);
    if (outcome === 'full') {
      if (fresh) {
        const note = `the deployment's ${this.book.limit} registrations are in use`;
        this.answer([replica], kisControl(KIS_ANSWERS.maxSubscriptions, want.id, want.key, encrypt, undefined, note));
      }
      return;
    }
    const entry = this.book.find(want.id, want.key)!;
    if ((outcome === 'live' || (outcome === 'held' && fresh)) && entry.upstream === 'live') {
      this.answer([replica], kisControl(KIS_ANSWERS.subscribed, want.id, want.key, entry.encrypted, this.cipher));
    }
  }

  private answer(to: string[], text: string): void {
    this.deps.publish({ kind: 'answer', session: this.session, to, data: Buffer.from(text, 'utf8') });
  }

  private reconcile(): void {
    this.upstream.setWanted(this.book.size > 0);
    if (this.upstream.isReady) for (const { entry, register } of this.book.work()) this.upstream.send(entry, register);
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
      const text = own ? data : Buffer.from(kisControl(KIS_ANSWERS.subscribed, entry.id, entry.key, entry.encrypted, this.cipher), 'utf8');
      this.deps.publish({ kind: 'frame', session: this.session, data: text });
    } else {
      this.answer(this.book.refused(entry), data.toString('utf8'));
    }
    this.reconcile();
  }

  data(_message: KisDataMessage, data: Buffer): void {
    this.deps.publish({ kind: 'frame', session: this.session, data });
  }

  /** Closes the session: at shutdown, or because the lease is no longer this replica's. */
  stop(reason: 'shutdown' | 'lease_lost'): void {
    this.upstream.stop(reason);
  }
}
