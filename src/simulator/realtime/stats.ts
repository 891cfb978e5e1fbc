/**
 * What the simulated brokers' WebSockets saw, in total and per app key, so a test can assert "one session, at most
 * 41 registrations, no refusal" from counts rather than from timings. An event that happens before a connection
 * is bound to an app key (an unknown approval key, a bad LOGIN) counts in the totals only.
 */
import { REALTIME_DROP_REASONS, type RealtimeDropReason, type RealtimeStats } from './types';

type Counter = Exclude<keyof RealtimeStats, 'refusals' | 'closes' | 'peakRegistrations' | 'peakConcurrentSessions'>;
type Peak = 'peakRegistrations' | 'peakConcurrentSessions';

function emptyStats(): RealtimeStats {
  return {
    connects: 0,
    sessions: 0,
    refusals: {},
    registrations: 0,
    unregistrations: 0,
    peakRegistrations: 0,
    framesSent: 0,
    recordsSent: 0,
    fillNoticesSent: 0,
    pingsSent: 0,
    pingsAnswered: 0,
    closes: Object.fromEntries(REALTIME_DROP_REASONS.map((r) => [r, 0])) as Record<RealtimeDropReason, number>,
    rapidReconnects: 0,
    peakConcurrentSessions: 0,
  };
}

export class RealtimeStatsBook {
  private totals = emptyStats();
  // Keyed by app keys the simulator knows (a connection is bound only to a credential's key), so it stays small.
  private byKey = new Map<string, RealtimeStats>();

  add(appKey: string | undefined, counter: Counter, by = 1): void {
    for (const stats of this.targets(appKey)) stats[counter] += by;
  }

  refused(appKey: string | undefined, code: string): void {
    for (const stats of this.targets(appKey)) stats.refusals[code] = (stats.refusals[code] ?? 0) + 1;
  }

  closed(appKey: string | undefined, reason: RealtimeDropReason): void {
    for (const stats of this.targets(appKey)) stats.closes[reason]++;
  }

  peak(appKey: string | undefined, peak: Peak, value: number): void {
    for (const stats of this.targets(appKey)) stats[peak] = Math.max(stats[peak], value);
  }

  stats(appKey?: string): RealtimeStats {
    const source = appKey === undefined ? this.totals : (this.byKey.get(appKey) ?? emptyStats());
    return { ...source, refusals: { ...source.refusals }, closes: { ...source.closes } };
  }

  clear(): void {
    this.totals = emptyStats();
    this.byKey = new Map();
  }

  private targets(appKey: string | undefined): RealtimeStats[] {
    if (appKey === undefined) return [this.totals];
    let stats = this.byKey.get(appKey);
    if (!stats) {
      stats = emptyStats();
      this.byKey.set(appKey, stats);
    }
    return [this.totals, stats];
  }
}
