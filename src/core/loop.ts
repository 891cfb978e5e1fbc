import type { Clock } from './clock';

/**
 * Runs a `tick()` over and over: each tick does what is due and returns when it next has work. Sleeps are cut
 * into chunks of at most `maxSleepMs`, so a wall-clock jump (a suspended VM, an NTP step) is noticed within a
 * chunk instead of after a sleep computed before the jump. A loop can be woken early (a manual renewal, a
 * config reload), and reports its liveness for /healthz.
 */
export class Loop {
  private wakeController = new AbortController();
  private tickStartedAt: number | null = null;
  private lastTickEndedAt: number | null = null;
  private done: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly tick: () => Promise<number>,
    private readonly clock: Clock,
    private readonly maxSleepMs = 30_000,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  start(signal: AbortSignal): Promise<void> {
    this.done ??= this.run(signal);
    return this.done;
  }

  wake(): void {
    this.wakeController.abort();
  }

  private async run(signal: AbortSignal): Promise<void> {
    // The stop reaches the sleep through the wake controller, linked once: an AbortSignal.any per sleep registers a
    // dependant on the long-lived stop signal each time, garbage that Node 20 keeps past minor collections (a loop
    // ticking often grew RSS by a megabyte a second until a major GC came).
    const stopSleeping = (): void => this.wakeController.abort();
    signal.addEventListener('abort', stopSleeping, { once: true });
    try {
      await this.runUntil(signal);
    } finally {
      signal.removeEventListener('abort', stopSleeping);
    }
  }

  private async runUntil(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.tickStartedAt = Date.now();
      let next: number;
      try {
        next = await this.tick();
      } catch (error) {
        // A tick never should throw; if one does, the loop carries on rather than leave a token unrenewed.
        this.onError(error);
        next = this.clock.now() + 5_000;
      }
      this.lastTickEndedAt = Date.now();
      this.tickStartedAt = null;
      if (signal.aborted) break;
      if (this.wakeController.signal.aborted) {
        // Woken while ticking: whatever woke it may need another tick at once.
        this.wakeController = new AbortController();
        continue;
      }
      const wait = Math.max(0, Math.min(next - this.clock.now(), this.maxSleepMs));
      if (wait > 0) await this.clock.sleep(wait, this.wakeController.signal);
      if (this.wakeController.signal.aborted) this.wakeController = new AbortController();
    }
  }

  /** Stuck: a tick has run longer than `stuckAfterMs`, or no tick has ended for that long past a full sleep. */
  isStuck(stuckAfterMs: number, now = Date.now()): boolean {
    if (this.done === undefined) return false;
    if (this.tickStartedAt !== null) return now - this.tickStartedAt > stuckAfterMs;
    return this.lastTickEndedAt !== null && now - this.lastTickEndedAt > this.maxSleepMs + stuckAfterMs;
  }
}
