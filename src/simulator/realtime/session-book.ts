/**
 * Which connections are open, which one holds each app key, and what happened to the ones that closed: the record
 * that lets a test assert "never two sessions for one key at once" and "no reconnect faster than the pacing rule".
 */
import type { SimulatedProvider } from '../types';
import type { RealtimeConnection, SessionRegistry } from './connection';
import type { RealtimeStatsBook } from './stats';
import type { RealtimeSessionInfo } from './types';

// Closed sessions kept for the control API's list; a client in a reconnect loop would otherwise grow it for ever.
const MAX_CLOSED_KEPT = 1000;

export interface SessionFilter {
  appKey?: string;
  /** Only the open ones (true) or only the closed ones (false). */
  open?: boolean;
}

export class SessionBook implements SessionRegistry {
  private readonly live = new Set<RealtimeConnection>();
  private closedOnes: RealtimeConnection[] = [];
  // When each key's last connection closed, for the pacing rule (keyed by provider and app key: known keys only).
  private readonly lastClosedAt = new Map<string, number>();

  constructor(
    private readonly stats: RealtimeStatsBook,
    private readonly reconnectSpacingMs: number,
  ) {}

  opened(connection: RealtimeConnection): void {
    this.live.add(connection);
    this.stats.add(undefined, 'connects');
  }

  /** The open session bound to this key, if any. */
  holderOf(provider: SimulatedProvider, appKey: string): RealtimeConnection | undefined {
    for (const c of this.live) if (c.provider === provider && c.appKey === appKey && c.boundAt !== undefined) return c;
    return undefined;
  }

  bound(connection: RealtimeConnection): void {
    this.attributed(connection);
    const appKey = connection.appKey;
    const concurrent = [...this.live].filter((c) => c.provider === connection.provider && c.appKey === appKey && c.boundAt !== undefined).length;
    this.stats.peak(appKey, 'peakConcurrentSessions', concurrent);
  }

  /**
   * A connection now known to act for its app key (bound, or refused by name): if the key's previous connection
   * closed less than the pacing rule ago, that is a rapid reconnect, the pattern the broker's notice says gets a
   * key blocked. Counted, never blocked (docs/brokers.md#kis-pacing).
   */
  attributed(connection: RealtimeConnection): void {
    if (connection.appKey === undefined) return;
    const previous = this.lastClosedAt.get(keyName(connection.provider, connection.appKey));
    if (previous !== undefined && connection.openedAt - previous < this.reconnectSpacingMs) {
      this.stats.add(connection.appKey, 'rapidReconnects');
    }
  }

  closed(connection: RealtimeConnection): void {
    if (!this.live.delete(connection)) return;
    if (connection.appKey !== undefined && connection.closedAt !== undefined) {
      this.lastClosedAt.set(keyName(connection.provider, connection.appKey), connection.closedAt);
    }
    this.closedOnes.push(connection);
    if (this.closedOnes.length > MAX_CLOSED_KEPT) this.closedOnes = this.closedOnes.slice(-MAX_CLOSED_KEPT);
  }

  /** Open connections, for the beats (pings) and for ending them all. */
  openConnections(): RealtimeConnection[] {
    return [...this.live];
  }

  list(filter: SessionFilter = {}): RealtimeSessionInfo[] {
    const all = [...this.closedOnes, ...this.live].sort((a, b) => a.id - b.id);
    return all
      .filter((c) => filter.appKey === undefined || c.appKey === filter.appKey)
      .filter((c) => filter.open === undefined || c.open === filter.open)
      .map((c) => c.info());
  }

  clear(): void {
    this.closedOnes = [];
    this.lastClosedAt.clear();
  }
}

function keyName(provider: SimulatedProvider, appKey: string): string {
  return `${provider}\n${appKey}`;
}
