import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { ProbeConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import { classifyTransportError, undici } from '../providers/broker-http';

/**
 * The optional custom probe: a GET to a local application's health URL (the first system checked a bot's
 * /health). Reported on its own; it never leads to an issuance, since a failing app says nothing about the
 * token.
 */
export class CustomProbe {
  private nextAt = 0;

  constructor(
    private readonly account: AccountRef,
    private readonly probe: ProbeConfig,
    private readonly dispatcher: Dispatcher,
    private readonly clock: Clock,
    private readonly bus: EventBus,
  ) {}

  async tick(): Promise<number> {
    const now = this.clock.now();
    if (now < this.nextAt) return this.nextAt;
    const started = performance.now();
    let ok = false;
    let message: string;
    try {
      const response = await undici().request(this.probe.url, { dispatcher: this.dispatcher, signal: AbortSignal.timeout(this.probe.timeoutMs) });
      await response.body.dump();
      ok = response.statusCode >= 200 && response.statusCode < 300;
      message = `HTTP ${response.statusCode}`;
    } catch (error) {
      message = classifyTransportError(error, `GET ${new URL(this.probe.url).host}`).message;
    }
    this.bus.emit('probe.done', { account: this.account, ok, message, durationMs: performance.now() - started });
    this.nextAt = this.clock.now() + this.probe.intervalMs;
    return this.nextAt;
  }
}
