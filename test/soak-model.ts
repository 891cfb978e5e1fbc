/**
 * The expected number of issuances over a period with the default policy (renewal 1 h before expiry, less half
 * the 10-minute jitter, i.e. the drawn 0.5) for 24-hour tokens, when the renewal i meets `failures[i]` broker
 * failures first, each costing the first retries' 5 minutes. Written apart from the sidecar's own policy code,
 * so the soak test compares two independent accounts of the same rule.
 */
export const DAY_MS = 24 * 60 * 60 * 1000;
const RENEW_AFTER_MS = DAY_MS - 65 * 60 * 1000;
const RETRY_MS = 5 * 60 * 1000;

export function expectedIssuances(start: number, end: number, failures: number[]): number {
  let count = 1;
  let issuedAt = start;
  for (let i = 0; ; i++) {
    const next = issuedAt + RENEW_AFTER_MS + (failures[i] ?? 0) * RETRY_MS;
    if (next > end) return count;
    count++;
    issuedAt = next;
  }
}
