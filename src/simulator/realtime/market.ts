/**
 * The streams of the simulated market: one per KIS (tr_id, tr_key) or Kiwoom (type, item), shared by every session
 * that registered it, as a stock's trades are the same for every subscriber. A stream numbers its records; the
 * number goes on while nobody listens (the market trades on), so a client that comes back after a break sees the
 * gap it would see at the broker.
 */
import type { SimulatedProvider } from '../types';

export interface Stream<S> {
  readonly provider: SimulatedProvider;
  /** KIS tr_id or Kiwoom type. */
  readonly id: string;
  /** KIS tr_key or Kiwoom item. */
  readonly key: string;
  /** Whether the pump advances it with time; fill notices advance only when an order fills. */
  readonly timed: boolean;
  readonly subscribers: Set<S>;
  /** Number of the next record. */
  next: number;
  /** When it last produced records (or was caught up); undefined before its first. */
  lastAdvancedAt?: number;
}

/** The pace that idle streams are caught up at when someone subscribes again. */
export interface Pace {
  framesPerSecond: number;
  recordsPerFrame: number;
}

// Idle streams are kept so their numbering survives a client's reconnect; past this many the oldest idle ones are
// forgotten (and restart at 1), so a client inventing tr_keys cannot grow the simulator without bound.
const MAX_STREAMS = 10_000;

export class Market<S> {
  private readonly streams = new Map<string, Stream<S>>();

  constructor(private readonly maxStreams = MAX_STREAMS) {}

  subscribe(provider: SimulatedProvider, id: string, key: string, timed: boolean, subscriber: S, now: number, pace: Pace): void {
    const name = streamName(provider, id, key);
    let stream = this.streams.get(name);
    if (!stream) {
      stream = { provider, id, key, timed, subscribers: new Set(), next: 1 };
      this.streams.set(name, stream);
      this.forgetIdleBeyondLimit();
    }
    if (stream.subscribers.size === 0 && stream.timed && stream.lastAdvancedAt !== undefined) {
      const missedFrames = Math.floor(((now - stream.lastAdvancedAt) * pace.framesPerSecond) / 1000);
      stream.next += Math.max(0, missedFrames) * pace.recordsPerFrame;
      stream.lastAdvancedAt = now;
    }
    stream.subscribers.add(subscriber);
  }

  unsubscribe(provider: SimulatedProvider, id: string, key: string, subscriber: S): void {
    this.streams.get(streamName(provider, id, key))?.subscribers.delete(subscriber);
  }

  /** The stream, if anyone ever registered it (and it was not forgotten since). */
  find(provider: SimulatedProvider, id: string, key: string): Stream<S> | undefined {
    return this.streams.get(streamName(provider, id, key));
  }

  /** Streams the pump serves now: timed, with at least one subscriber. */
  *listened(): Iterable<Stream<S>> {
    for (const stream of this.streams.values()) if (stream.timed && stream.subscribers.size > 0) yield stream;
  }

  /** Numbers the next `count` records of a stream and returns the first. */
  take(stream: Stream<S>, count: number, now: number): number {
    const first = stream.next;
    stream.next += count;
    stream.lastAdvancedAt = now;
    return first;
  }

  clear(): void {
    this.streams.clear();
  }

  private forgetIdleBeyondLimit(): void {
    for (const [name, stream] of this.streams) {
      if (this.streams.size <= this.maxStreams) return;
      if (stream.subscribers.size === 0) this.streams.delete(name);
    }
  }
}

function streamName(provider: SimulatedProvider, id: string, key: string): string {
  // A newline appears in no tr_id, tr_key, type or item the sessions accept, so two streams never share a name.
  return `${provider}\n${id}\n${key}`;
}
