import type { Clock } from './clock';

/**
 * Runs an operation on request, with requests that arrive while it runs folded together: one run in flight, at
 * most one queued, and runs started at least `minIntervalMs` apart. A request while a run is in flight (or within
 * the interval after one started) queues the next run; a request while one is already queued joins it, since that
 * run has not started and so covers it. A burst of requests thus costs two runs, and a storm that lasts costs one
 * run per interval, however many requests it holds. Made for the config reload, which a SIGHUP storm used to run
 * once per signal (4,073 in 10 s): coalescing alone would not have helped there, since each reload ended before
 * the next signal came.
 */
export class CoalescingRunner<Reason> {
  private inFlight: Promise<void> | undefined;
  private queued: { reasons: Set<Reason>; requests: number; done: Promise<void> } | undefined;
  private lastStartedAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly operation: (reasons: Reason[], requests: number) => Promise<void>,
    private readonly minIntervalMs: number,
    private readonly clock: Pick<Clock, 'monotonic' | 'sleep'>,
  ) {}

  /** Resolves (or rejects) with the run that covers this request. */
  request(reason: Reason): Promise<void> {
    if (this.queued) {
      this.queued.reasons.add(reason);
      this.queued.requests++;
      return this.queued.done;
    }
    if (!this.inFlight && this.intervalLeftMs() <= 0) return this.start(new Set([reason]), 1);
    const queued = { reasons: new Set([reason]), requests: 1, done: Promise.resolve() };
    const startQueued = async () => {
      const left = this.intervalLeftMs();
      if (left > 0) await this.clock.sleep(left);
      this.queued = undefined;
      if (!this.stopped) await this.start(queued.reasons, queued.requests);
    };
    // After the run in flight, whatever became of it.
    const before = this.inFlight ?? Promise.resolve();
    queued.done = before.then(startQueued, startQueued);
    this.queued = queued;
    return queued.done;
  }

  /** No queued run starts from now on (the one in flight finishes). */
  stop(): void {
    this.stopped = true;
  }

  private intervalLeftMs(): number {
    return this.lastStartedAt + this.minIntervalMs - this.clock.monotonic();
  }

  private start(reasons: Set<Reason>, requests: number): Promise<void> {
    this.lastStartedAt = this.clock.monotonic();
    const run: Promise<void> = this.operation([...reasons], requests).finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
    this.inFlight = run;
    return run;
  }
}
