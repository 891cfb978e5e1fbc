/**
 * Call-rate limits other than token spacing. Refused requests never consume or restart a window, so a client
 * hammering the simulator is refused for exactly as long as the rule says and no longer.
 */

/** Approval keys: at most one per spacing per app key; a refused request does not restart the window. */
export class ApprovalSpacing {
  private readonly lastIssued = new Map<string, number>();

  constructor(private readonly spacingMs: number) {}

  tryTake(appKey: string, now: number): boolean {
    const last = this.lastIssued.get(appKey);
    if (last !== undefined && now - last < this.spacingMs) return false;
    this.lastIssued.set(appKey, now);
    return true;
  }

  clear(): void {
    this.lastIssued.clear();
  }
}

/**
 * The KIS per-second call quota per app key, counted in fixed windows of the clock's whole seconds. KIS publishes
 * a count per second ("18 calls/s real, 1 mock", docs/brokers.md#kis-call-limits) and nothing about a burst or
 * its window; fixed windows are the plainest reading of that count, and make tests with a manual clock exact.
 */
export class PerSecondQuota {
  private readonly windows = new Map<string, { second: number; used: number }>();

  tryTake(appKey: string, limit: number, now: number): boolean {
    const second = Math.floor(now / 1000);
    let window = this.windows.get(appKey);
    if (!window || window.second !== second) {
      window = { second, used: 0 };
      this.windows.set(appKey, window);
    }
    if (window.used >= limit) return false;
    window.used++;
    return true;
  }

  clear(): void {
    this.windows.clear();
  }
}
