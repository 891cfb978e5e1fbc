/**
 * Time is injected everywhere: logic asks a Clock, never Date.now() or setTimeout directly, so tests can
 * drive days of renewals in milliseconds and subprocess tests can share one accelerated clock.
 */
export interface Clock {
  /** Wall-clock time, epoch milliseconds. */
  now(): number;
  /**
   * Milliseconds on a clock that only moves forward, at the rate of `now()`, from an arbitrary origin: only
   * differences mean anything. A wall-clock step (NTP, a VM resumed, a person) moves `now()`, never this, so what
   * must not be shortened by one (the broker's issuance spacing) is also measured here.
   */
  monotonic(): number;
  /** Resolves after `ms` of this clock's time, or early (never rejecting) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

// setTimeout overflows past 2^31-1 ms; longer sleeps are taken in chunks.
const MAX_TIMER_MS = 2_147_483_647;

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
    signal?.addEventListener('abort', done, { once: true });
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: realSleep,
};

/**
 * A clock that runs `scale` times faster than real time from a shared origin. Several processes (sidecars
 * and the simulator) given the same origin agree on "now", which lets a subprocess test live through a
 * simulated day in a minute. Used only by tests, which hand it to child processes (the sidecar, the simulator)
 * through TEST_CLOCK_ENV; the simulator has no flag of its own for it.
 */
export class ScaledClock implements Clock {
  constructor(
    private readonly simulatedOrigin: number,
    private readonly realOrigin: number,
    readonly scale: number,
  ) {
    if (!(scale > 0)) throw new RangeError('time scale must be positive');
  }

  now(): number {
    return Math.floor(this.simulatedOrigin + (Date.now() - this.realOrigin) * this.scale);
  }

  monotonic(): number {
    return performance.now() * this.scale;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return realSleep(Math.ceil(ms / this.scale), signal);
  }

  /** Spec form `simulatedOrigin,realOrigin,scale` (epoch ms, epoch ms, factor), as passed through the environment. */
  static parse(spec: string): ScaledClock {
    const parts = spec.split(',').map(Number);
    if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n))) {
      throw new Error(`clock spec must be "simulatedOriginMs,realOriginMs,scale", got "${spec}"`);
    }
    return new ScaledClock(parts[0]!, parts[1]!, parts[2]!);
  }
}

/** The environment variable through which test harnesses hand a ScaledClock to child processes. */
export const TEST_CLOCK_ENV = 'BROKER_TOKEN_SIDECAR_TEST_CLOCK';

export function clockFromEnvironment(env: NodeJS.ProcessEnv = process.env): Clock {
  const spec = env[TEST_CLOCK_ENV];
  return spec ? ScaledClock.parse(spec) : systemClock;
}

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

/**
 * A clock that moves only when a test moves it. Sleepers wake in order as time passes them. Moving it forward is
 * time passing (the monotonic clock moves with it); moving it back, or `stepWallClock`, is a step of the wall clock
 * alone.
 */
export class ManualClock implements Clock {
  private current: number;
  private elapsed = 0;
  private sleepers: Sleeper[] = [];

  constructor(start: number | Date) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.elapsed;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || ms <= 0) {
        resolve();
        return;
      }
      const sleeper: Sleeper = {
        wakeAt: this.current + ms,
        resolve: () => {
          signal?.removeEventListener('abort', sleeper.resolve);
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', sleeper.resolve, { once: true });
    });
  }

  /** Moves time to `instant` (forward or backward) and wakes every sleeper whose time has come. */
  set(instant: number | Date): void {
    const next = typeof instant === 'number' ? instant : instant.getTime();
    this.elapsed += Math.max(0, next - this.current);
    this.moveWallClock(next);
  }

  /** The wall clock stepped by `ms` (forward or back) with no time passing: monotonic() stays where it is. */
  stepWallClock(ms: number): void {
    this.moveWallClock(this.current + ms);
  }

  private moveWallClock(next: number): void {
    this.current = next;
    const due = this.sleepers.filter((s) => s.wakeAt <= this.current).sort((a, b) => a.wakeAt - b.wakeAt);
    for (const sleeper of due) sleeper.resolve();
  }

  advance(ms: number): void {
    this.set(this.current + ms);
  }

  get pendingSleepers(): number {
    return this.sleepers.length;
  }
}
