import type { IncomingWebhook } from '@slack/webhook';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import type { Clock } from '../core/clock';
import type { SecretRegistry } from '../core/secrets';
import type { OutboxItem } from './outbox-store';

/**
 * Delivers one message to a Slack incoming webhook, through @slack/webhook over an injected undici dispatcher:
 * a timeout per attempt, retries with capped exponential backoff on 5xx, timeouts and network errors, and on
 * 429 after the Retry-After Slack asked for. Other 4xx answers (a revoked webhook, a bad payload) fail at once.
 */
type DeliveryResult = 'sent' | 'retried' | 'failed';

interface DeliveryOptions {
  webhookUrl: string;
  criticalWebhookUrl: string | undefined;
  timeoutMs: number;
  retry: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  dispatcher: Dispatcher | undefined;
  /** Real time: a retry waits for Slack, not for the sidecar's (possibly simulated) clock. */
  clock: Clock;
  secrets: SecretRegistry;
  onAttempt: (result: DeliveryResult, detail: string) => void;
}

// Loaded at the first delivery: a sidecar without Slack alerts never holds the Slack client in memory.
const slackWebhook = (): typeof import('@slack/webhook') => require('@slack/webhook') as typeof import('@slack/webhook');

// Slack asks for seconds to minutes; anything longer is not worth holding the queue for.
const MAX_RETRY_AFTER_MS = 15 * 60_000;

export class SlackDelivery {
  constructor(private readonly options: DeliveryOptions) {}

  private webhook(url: string, capture: { retryAfter: string | null }): IncomingWebhook {
    const dispatcher = this.options.dispatcher;
    const { IncomingWebhook } = slackWebhook();
    return new IncomingWebhook(url, {
      timeout: this.options.timeoutMs,
      fetch: (async (input: string | URL, init?: RequestInit) => {
        const response = await undiciFetch(input, { ...(init as object), ...(dispatcher ? { dispatcher } : {}) });
        capture.retryAfter = response.headers.get('retry-after');
        return response;
      }) as unknown as typeof fetch,
    });
  }

  /** Resolves to 'sent' or 'failed'; never throws. `signal` cuts the waiting between attempts short. */
  async deliver(item: OutboxItem, signal: AbortSignal): Promise<'sent' | 'failed'> {
    const { retry, clock, secrets, onAttempt } = this.options;
    const url = item.severity === 'critical' && this.options.criticalWebhookUrl ? this.options.criticalWebhookUrl : this.options.webhookUrl;
    const capture = { retryAfter: null as string | null };
    const webhook = this.webhook(url, capture);
    for (let attempt = 1; ; attempt++) {
      let waitMs: number;
      let detail: string;
      try {
        capture.retryAfter = null;
        await webhook.send(item.payload as Parameters<IncomingWebhook['send']>[0]);
        onAttempt('sent', item.label);
        return 'sent';
      } catch (error) {
        const backoff = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
        if (error instanceof slackWebhook().IncomingWebhookHTTPError) {
          detail = `HTTP ${error.statusCode}`;
          if (error.statusCode === 429) {
            const seconds = Number(capture.retryAfter);
            waitMs = Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : backoff;
          } else if (error.statusCode >= 500) {
            waitMs = backoff;
          } else {
            onAttempt('failed', `${item.label}: ${detail}, not retried`);
            return 'failed';
          }
        } else {
          // No answer: timeout, refused, unresolvable host. The message names no URL, and is redacted anyway.
          const cause = (error as { original?: { name?: string; cause?: { code?: string } } }).original;
          detail = cause?.name === 'TimeoutError' ? 'timeout' : (cause?.cause?.code ?? cause?.name ?? 'network error');
          waitMs = backoff;
        }
      }
      if (attempt >= retry.attempts || signal.aborted) {
        onAttempt('failed', secrets.redact(`${item.label}: ${detail} after ${attempt} attempt(s)`));
        return 'failed';
      }
      onAttempt('retried', secrets.redact(`${item.label}: ${detail}; retrying in ${Math.ceil(waitMs / 1000)} s`));
      await clock.sleep(waitMs, signal);
    }
  }
}
