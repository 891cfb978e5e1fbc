/**
 * A replica's session as it stands on the deployment's one session (replicas.ts): in place of the broker's socket,
 * the holder's relay. The session above it (kis-session.ts, kiwoom-session.ts) is unchanged: it sends registrations,
 * which become this replica's wants; it reads the holder's messages as it would read the broker's, and its book does
 * what it does alone: answers its clients, fans frames out, replays its registrations after a lost session.
 *
 * - The holder's session open (a number not seen before, or a new holder) is this session ready; anything else, or
 *   the holder gone, is this session lost: its clients stay connected, and its registrations are sent again (as
 *   new asks) once the next session is open, which a new holder opened with the union already replayed.
 * - Messages of a holder older than the newest seen (a lower fencing number) are ignored.
 * - What is the same for every broker is here (RelayLink); how a broker's requests are answered is its subclass's:
 *   KIS's below, Kiwoom's in kiwoom-relay.ts.
 */
import type { Clock } from '../core/clock';
import type { RealtimeEndReason, RealtimeUpstreamState } from '../core/realtime-vocabulary';
import type { KisCarrier, KisReceiver } from './carriers';
import type { ClientConnection } from './client';
import { KIS_ANSWERS, kisControl, readKisUpstream } from './kis-wire';
import { name, type Entry, type RegistrationBook } from './registrations';
import type { RelayEnvelope, Want } from './relay-wire';
import type { UpstreamHooks, UpstreamPort } from './upstream';

export abstract class RelayLink<R> implements UpstreamPort {
  private stateNow: RealtimeUpstreamState = 'idle';
  private ready = false;
  private stopped = false;
  lastFrameAt: number | undefined;
  /** The newest holder heard from, and its session this replica is on. */
  private fence = 0;
  private session = -1;
  /** Per registration: the ask it was last sent with. */
  private readonly asks = new Map<string, number>();
  private nextAsk = 1;

  constructor(
    private readonly me: string,
    protected readonly receiver: R,
    private readonly book: RegistrationBook<ClientConnection>,
    private readonly hooks: UpstreamHooks,
    protected readonly clock: Clock,
    /** Told when this replica's wants changed. */
    private readonly wantsChanged: () => void,
  ) {}

  get state(): RealtimeUpstreamState {
    return this.stateNow;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** What this replica's clients want: every registration they hold, whatever its state at the holder. */
  wants(): Want[] {
    const wants: Want[] = [];
    for (const entry of this.book.all()) {
      if (entry.subscribers.size === 0) continue;
      wants.push({ id: entry.id, key: entry.key, count: entry.subscribers.size, ask: this.asks.get(name(entry.id, entry.key)) ?? 0 });
    }
    return wants;
  }

  setWanted(): void {
    this.wantsChanged();
  }

  /** Registrations sent: each a new ask, which wants a fresh answer from the holder. */
  protected asked(entries: Iterable<{ id: string; key: string }>): void {
    for (const { id, key } of entries) this.asks.set(name(id, key), this.nextAsk++);
    this.wantsChanged();
  }

  /** Registrations let go: the holder unregisters them when no replica wants them any more. */
  protected forgot(entries: Iterable<{ id: string; key: string }>): void {
    for (const { id, key } of entries) this.asks.delete(name(id, key));
    this.wantsChanged();
  }

  /** A message from the holder (this replica's own in-process, the others' through Redis). */
  receive({ fence, message }: RelayEnvelope): void {
    if (this.stopped || fence < this.fence) return;
    if (fence > this.fence) {
      this.fence = fence;
      this.session = -1;
      if (this.ready) this.lose('holder_lost', 'down');
    }
    if (message.kind === 'session') {
      if (message.state === 'open') {
        if (message.session !== this.session) {
          // A session this replica did not see end (it blinked, or joined): the one it was on is gone.
          if (this.ready) this.lose('closed', 'down');
          this.session = message.session;
          this.ready = true;
          this.setState('open', undefined);
          this.hooks.ready();
        }
      } else if (this.ready || message.state !== this.stateNow) {
        this.session = message.session;
        this.lose(message.reason ?? 'closed', message.state);
      }
      return;
    }
    if (message.kind === 'answer' && !message.to.includes(this.me)) return;
    this.deliver(message.data);
  }

  /** The broker's frame or answer (or the holder's own answer), as the broker's socket would hand it up. */
  protected abstract deliver(data: Buffer): void;

  /** The session this replica was on is gone: requests waiting for its answers are forgotten (they are replayed). */
  protected sessionLost(): void {}

  /** The holder went away (its lease lapsed, or another replica took it): this session is lost until the next. */
  holderGone(): void {
    this.lose('holder_lost', 'down');
  }

  private lose(reason: RealtimeEndReason, state: RealtimeUpstreamState): void {
    const wasReady = this.ready;
    if (wasReady) {
      this.ready = false;
      this.sessionLost();
      this.hooks.lost(reason);
    }
    // The end's reason is told once, with the session that ended; the holder's later states carry none.
    this.setState(state, wasReady ? reason : undefined);
  }

  private setState(state: RealtimeUpstreamState, reason: RealtimeEndReason | undefined): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.hooks.state(state, reason, undefined);
  }

  stop(): void {
    this.stopped = true;
    this.lose('shutdown', 'idle');
  }
}

/** KIS: the holder's answers name their registration; an unregistration is answered here (the holder lets it go). */
export class KisRelayLink extends RelayLink<KisReceiver> implements KisCarrier {
  send(entry: Entry<unknown>, register: boolean): void {
    if (register) {
      this.asked([entry]);
      return;
    }
    this.forgot([entry]);
    const text = kisControl(KIS_ANSWERS.unsubscribed, entry.id, entry.key, entry.encrypted);
    // After the book's own step, as an answer from the broker would come.
    queueMicrotask(() => this.deliver(Buffer.from(text, 'utf8')));
  }

  protected deliver(data: Buffer): void {
    const message = readKisUpstream(data.toString('utf8'));
    if (message.kind === 'control') this.receiver.control(message, data);
    else if (message.kind === 'data') {
      this.lastFrameAt = this.clock.now();
      this.receiver.data(message, data);
    }
  }
}
