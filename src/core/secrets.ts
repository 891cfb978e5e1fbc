/**
 * Every secret the process learns (app keys, app secrets, tokens, approval keys, webhook URLs, admin tokens)
 * is registered here, and every outward text (log lines, error messages, Slack payloads) passes through
 * `redact`. Redaction at the boundary is what keeps a secret out of a log line someone forgot to think about.
 */
const MIN_SECRET_LENGTH = 6; // shorter values would redact ordinary words
export const REDACTED = '[REDACTED]';

export class SecretRegistry {
  // Secrets indexed by their last characters: a text is scanned once, and only the few secrets whose tail
  // appears at a position are compared there. One regex of every secret would be rebuilt at each new token
  // and grow with every account (thousands of alternatives at a thousand accounts).
  private readonly byTail = new Map<string, string[]>();
  private count = 0;

  add(value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_LENGTH) return;
    const tail = value.slice(-MIN_SECRET_LENGTH);
    const bucket = this.byTail.get(tail) ?? [];
    if (bucket.includes(value)) return;
    bucket.push(value);
    bucket.sort((a, b) => b.length - a.length);
    this.byTail.set(tail, bucket);
    this.count++;
  }

  redact(text: string): string {
    if (this.count === 0 || text.length < MIN_SECRET_LENGTH) return text;
    const found: Array<[number, number]> = [];
    for (let end = MIN_SECRET_LENGTH; end <= text.length; end++) {
      const bucket = this.byTail.get(text.slice(end - MIN_SECRET_LENGTH, end));
      if (!bucket) continue;
      for (const secret of bucket) {
        const start = end - secret.length;
        if (start >= 0 && text.startsWith(secret, start)) found.push([start, end]);
      }
    }
    if (found.length === 0) return text;
    // Overlapping occurrences are merged, so no part of any secret survives next to a redaction.
    found.sort((a, b) => a[0] - b[0]);
    let out = '';
    let cursor = 0;
    let spanStart = found[0]![0];
    let spanEnd = found[0]![1];
    for (const [start, end] of found.slice(1)) {
      if (start <= spanEnd) {
        spanEnd = Math.max(spanEnd, end);
        continue;
      }
      out += text.slice(cursor, spanStart) + REDACTED;
      cursor = spanEnd;
      spanStart = start;
      spanEnd = end;
    }
    return out + text.slice(cursor, spanStart) + REDACTED + text.slice(spanEnd);
  }

  /** Redacts every string inside a JSON-like value, returning a copy. */
  redactDeep<T>(value: T, depth = 0): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (depth > 8 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return (value as unknown[]).map((v) => this.redactDeep(v, depth + 1)) as T;
    if (value instanceof Error) {
      return { type: value.name, message: this.redact(value.message), code: (value as { code?: unknown }).code } as T;
    }
    const copy: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      copy[key] = this.redactDeep(inner, depth + 1);
    }
    return copy as T;
  }
}

/** At most the first `length` characters of a secret, for /status and logs that need to tell tokens apart. */
export function preview(secret: string | undefined, length = 6): string | null {
  if (!secret) return null;
  return `${secret.slice(0, Math.min(length, 6))}…`;
}
