/**
 * A beat on the simulator's injected clock (so a test's ManualClock drives frames and pings exactly), running only
 * while someone is connected: an idle simulator leaves no timer behind. A changed interval takes effect at once.
 */
import type { Clock } from '../../core/clock';

// A paused beat (interval Infinity) still wakes now and then, so a clock stepped far ahead is noticed.
const PAUSED_CHECK_MS = 3_600_000;

export class Ticker {
  private running: AbortController | undefined;
  private wakeController = new AbortController();

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: () => number,
    private readonly beat: () => void,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = new AbortController();
    void this.run(this.running.signal);
  }

  stop(): void {
    this.running?.abort();
    this.running = undefined;
    // Ends the current wait; the beat sleeps on the wake signal alone (see Loop: no AbortSignal.any per sleep).
    this.wakeController.abort();
  }

  /** Restarts the current wait with the interval as it is now. */
  wake(): void {
    this.wakeController.abort();
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const interval = this.intervalMs();
      const woken = this.wakeController.signal;
      await this.clock.sleep(Number.isFinite(interval) ? interval : PAUSED_CHECK_MS, woken);
      if (signal.aborted) return;
      if (woken.aborted) {
        this.wakeController = new AbortController();
        continue;
      }
      if (Number.isFinite(interval)) this.beat();
    }
  }
}
