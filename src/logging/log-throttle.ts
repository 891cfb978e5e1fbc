import type { Clock } from '../core/clock';

/** What a summary line reports: the occurrences since the last line. */
interface ThrottleSummary<R extends string> {
  count: number;
  reasons: Partial<Record<R, number>>;
  /** The distinct sources seen (remote addresses), at most MAX_SOURCES of them, so the line stays short. */
  sources: string[];
}

// Enough to tell one misconfigured client from a scan, few enough to keep a summary line one line.
const MAX_SOURCES = 10;

/**
 * Logs an event that can come thousands of times a minute (a client retrying a wrong admin token, a flood of idle
 * connections) in a bounded number of lines: the first occurrence at once, then at most one summary per interval
 * with the count since the last line, and nothing once a whole interval passed without one, so the next occurrence
 * is again logged at once. The counter metric counts every occurrence; the log only has to say that it happens,
 * from where, and how often. Time comes from the injected clock, so tests step through the intervals.
 */
export class LogThrottle<R extends string> {
  private pending: ThrottleSummary<R> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    /** Stops the summaries at shutdown (the last one is written then); after it, occurrences are only counted. */
    private readonly signal: AbortSignal,
    private readonly logFirst: (reason: R, source: string | undefined) => void,
    private readonly logSummary: (summary: ThrottleSummary<R>) => void,
  ) {}

  record(reason: R, source: string | undefined): void {
    if (this.signal.aborted) return;
    if (!this.pending) {
      this.logFirst(reason, source);
      this.pending = { count: 0, reasons: {}, sources: [] };
      void this.summarise();
      return;
    }
    const pending = this.pending;
    pending.count++;
    pending.reasons[reason] = (pending.reasons[reason] ?? 0) + 1;
    if (source !== undefined && pending.sources.length < MAX_SOURCES && !pending.sources.includes(source)) pending.sources.push(source);
  }

  /** One summary per interval while occurrences keep coming; the window closes after an interval without any. */
  private async summarise(): Promise<void> {
    for (;;) {
      await this.clock.sleep(this.intervalMs, this.signal);
      const pending = this.pending!;
      if (pending.count === 0) {
        this.pending = undefined;
        return;
      }
      this.logSummary(pending);
      this.pending = { count: 0, reasons: {}, sources: [] };
      if (this.signal.aborted) return;
    }
  }
}
