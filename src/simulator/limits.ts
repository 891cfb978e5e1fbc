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

/**
 * Kiwoom's business-call limit: a token bucket per (app key, api-id), refilled at `ratePerSecond` up to `burst`.
 * Kiwoom publishes no limit; what its clients' authors measured is "about 1 request/s per api-id with a burst of
 * 2" (docs/brokers.md#kiwoom-call-limits): a rate and a burst, which is what a bucket is. A fixed window cannot
 * hold both numbers (a window of one call has no burst; one of two calls lets 2/s through for good). A refused
 * call takes nothing, so a client retrying in a loop gets through as soon as one call has refilled.
 */
export class PerApiIdBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {}

  tryTake(appKey: string, apiId: string, now: number): boolean {
    // A newline appears in neither an app key nor an api-id, so two pairs never share a bucket.
    const key = `${appKey}\n${apiId}`;
    const bucket = this.buckets.get(key);
    const tokens = bucket === undefined ? this.burst : this.refilled(bucket, now);
    if (tokens < 1) return false;
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  clear(): void {
    this.buckets.clear();
  }

  private refilled(bucket: { tokens: number; at: number }, now: number): number {
    // Multiplying before dividing keeps whole-millisecond refills of an integer rate exact (1000 ms at 1/s is
    // exactly one call); a clock set backwards refills nothing rather than draining the bucket.
    const elapsedMs = Math.max(0, now - bucket.at);
    return Math.min(this.burst, bucket.tokens + (elapsedMs * this.ratePerSecond) / 1000);
  }
}
