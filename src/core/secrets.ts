/**
 * Every secret the process learns (app keys, app secrets, tokens, approval keys, webhook URLs, admin tokens)
 * is registered here, and every outward text (log lines, error messages, Slack payloads) passes through
 * `redact`. Redaction at the boundary is what keeps a secret out of a log line someone forgot to think about.
 */
const MIN_SECRET_LENGTH = 6; // shorter values would redact ordinary words
export const REDACTED = '[REDACTED]';

export class SecretRegistry {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | undefined;

  add(value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_LENGTH || this.secrets.has(value)) return;
    this.secrets.add(value);
    this.pattern = undefined;
  }

  forget(value: string | undefined): void {
    if (value && this.secrets.delete(value)) this.pattern = undefined;
  }

  get size(): number {
    return this.secrets.size;
  }

  redact(text: string): string {
    if (this.secrets.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
    if (!this.pattern) {
      // Longest first, so a token that contains an app key is removed whole.
      const alternatives = [...this.secrets]
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.pattern = new RegExp(alternatives.join('|'), 'g');
    }
    return text.replace(this.pattern, REDACTED);
  }

  /** Redacts every string inside a JSON-like value, returning a copy. */
  redactDeep<T>(value: T, depth = 0): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (depth > 8 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.redactDeep(v, depth + 1)) as T;
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
