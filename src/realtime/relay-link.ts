/**
 * A replica's KIS session as it stands on the deployment's one session (replicas.ts): in place of the broker's
 * socket, the holder's relay. The session (kis-session.ts) is unchanged above it: it sends registrations, which
 * become this replica's wants; it reads the holder's messages as it would read the broker's, and its book does
 * what it does alone: answers its clients, fans frames out, replays its registrations after a lost session.
 *
 * - The holder's session open (a number not seen before, or a new holder) is this session ready; anything else, or
 *   the holder gone, is this session lost: its clients stay connected, and its registrations are sent again (as
 *   new asks) once the next session is open, which a new holder opened with the union already replayed.
 * - Messages of a holder older than the newest seen (a lower fencing number) are ignored.
 * - An unregistration is answered here: the holder lets a registration go when no replica wants it any more.
 */
import type { Clock } from '../core/clock';
import type { RealtimeEndReason, RealtimeUpstreamState } from '../core/realtime-vocabulary';
import type { KisCarrier, KisReceiver } from './carriers';
import type { ClientConnection } from './client';
import { KIS_ANSWERS, kisControl, readKisUpstream } from './kis-wire';
import { name, type Entry, type RegistrationBook } from './registrations';
import type { RelayEnvelope, Want } from './relay-wire';
import type { UpstreamHooks } from './upstream';

export class KisRelayLink implements KisCarrier {
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
    private readonly receiver: KisReceiver,
    private readonly book: RegistrationBook<ClientConnection>,
    private readonly hooks: UpstreamHooks,
    private readonly clock: Clock,
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

  send(entry: Entry<unknown>, register: boolean): void {
    if (register) {
      this.asks.set(name(entry.id, entry.key), this.nextAsk++);
    } else {
      this.asks.delete(name(entry.id, entry.key));
      const text = kisControl(KIS_ANSWERS.unsubscribed, entry.id, entry.key, entry.encrypted);
      // After the book's own step, as an answer from the broker would come.
      queueMicrotask(() => this.deliver(Buffer.from(text, 'utf8')));
    }
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

  /** The holder went away (its lease lapsed, or another replica took it): this session is lost until the next. */
  holderGone(): void {
    this.lose('holder_lost', 'down');
  }

  private deliver(data: Buffer): void {
    const message = readKisUpstream(data.toString('utf8'));
    if (message.kind === 'control') this.receiver.control(message, data);
    else if (message.kind === 'data') {
      this.lastFrameAt = this.clock.now();
      this.receiver.data(message, data);
    }
  }

  private lose(reason: RealtimeEndReason, state: RealtimeUpstreamState): void {
    const wasReady = this.ready;
    if (wasReady) {
      this.ready = false;
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
