import type { Dispatcher } from 'undici';
import { BrokerError } from '../core/errors';
import type { HttpClientPolicy } from '../config/types';

/**
 * The one way the sidecar talks HTTP to a broker: an injected undici dispatcher (a MockAgent in unit tests,
 * an Agent with a connect timeout in production), a total deadline per request, no redirects followed, and
 * a cap on how much of an answer is read. Failures come out as BrokerError with a closed reason.
 */
/** Told once the broker answered (or the call failed on its way): the slot then counts one more window. */
export type CallAnswered = () => void;

/** The per-second budget, as the broker's HTTP sees it (src/budget/gate.ts keeps it). */
export interface BrokerCallGate {
  /** A slot for a call of `api` (a Kiwoom api-id; none for KIS), waited for until `signal` aborts. */
  slot(api: string | undefined, signal: AbortSignal): Promise<CallAnswered>;
}

export interface BrokerHttp {
  send(req: BrokerHttpRequest): Promise<BrokerHttpResponse>;
}

export interface BrokerHttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  /** A shorter limit than the client's own timeout, set by the caller (see TokenProvider.issue). */
  timeoutMs?: number;
  /** The call's deadline, when a layer above started counting it already (the budget's wait is part of it). */
  signal?: AbortSignal;
}

export interface BrokerHttpResponse {
  status: number;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

// Token answers are a few hundred bytes; anything past this is not a token answer.
const MAX_BODY_BYTES = 256 * 1024;

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/**
 * undici, loaded by the first request that needs it rather than at start: loading it is a fifth of a start (about
 * 130 of 670 ms on the bench's machine), and a sidecar whose tokens are valid on disk is ready before it calls a broker.
 */
export const undici = (): typeof import('undici') => require('undici') as typeof import('undici');

/**
 * The broker's connection pool: an undici Agent with a connect timeout, made at the first request (see `undici`).
 * Until then it stands in for the Agent in the three calls the sidecar makes on a dispatcher: undici's `request`
 * dispatches through it, and shutdown closes or destroys it.
 */
export function createBrokerDispatcher(policy: HttpClientPolicy): Dispatcher {
  let agent: Dispatcher | undefined;
  const made = (): Dispatcher =>
    (agent ??= new (undici().Agent)({
      connect: { timeout: policy.connectTimeoutMs },
      headersTimeout: policy.timeoutMs,
      bodyTimeout: policy.timeoutMs,
      keepAliveTimeout: 10_000,
    }));
  const lazy = {
    dispatch: (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean => made().dispatch(options, handler),
    close: async (): Promise<void> => agent?.close(),
    destroy: async (): Promise<void> => agent?.destroy(),
  };
  return lazy as unknown as Dispatcher;
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Turns what undici throws into a BrokerError; the message names the host, never a header or a body. */
export function classifyTransportError(error: unknown, what: string): BrokerError {
  if (error instanceof BrokerError) return error;
  const name = (error as { name?: string }).name;
  const code = errorCode(error);
  if (name === 'TimeoutError' || name === 'AbortError' || (code && TIMEOUT_CODES.has(code))) {
    return new BrokerError('timeout', `${what}: no answer in time${code ? ` (${code})` : ''}`);
  }
  return new BrokerError('network', `${what}: ${code ?? name ?? 'connection failed'}`);
}

export class UndiciBrokerHttp implements BrokerHttp {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly timeoutMs: number,
  ) {}

  async send(req: BrokerHttpRequest): Promise<BrokerHttpResponse> {
    const target = new URL(req.url);
    const what = `${req.method} ${target.host}${target.pathname}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await undici().request(target, {
        method: req.method,
        headers: req.body === undefined ? req.headers : { 'content-type': 'application/json; charset=utf-8', ...req.headers },
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        dispatcher: this.dispatcher,
        // One timeout signal, never AbortSignal.any: combined signals can fail to fire (nodejs/node#57736).
        signal: req.signal ?? deadlineOf(req, this.timeoutMs),
      });
    } catch (error) {
      throw classifyTransportError(error, what);
    }
    let text: string;
    try {
      text = await readLimited(response.body, MAX_BODY_BYTES);
    } catch (error) {
      response.body.destroy();
      if (error instanceof BrokerError) throw error;
      throw classifyTransportError(error, what);
    }
    if (response.statusCode >= 300 && response.statusCode < 400) {
      // A token endpoint that redirects is misconfigured or intercepted; following it could send the app
      // secret to another host.
      throw new BrokerError('bad_response', `${what}: redirect (HTTP ${response.statusCode}) refused`, { status: response.statusCode });
    }
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, text, json };
  }
}

/** The one timeout signal of a request: the caller's shorter limit, else the client's own. */
const deadlineOf = (req: BrokerHttpRequest, timeoutMs: number): AbortSignal => AbortSignal.timeout(Math.min(req.timeoutMs ?? timeoutMs, timeoutMs));

/**
 * Every request to the broker takes a slot of the account's per-second budget before it leaves, and frees it a
 * window after its answer (src/budget/). The deadline starts before the wait, so a call that waited for its slot
 * still ends within its timeout, as the issuance's record of when a request may have reached the broker assumes.
 */
export class BudgetedBrokerHttp implements BrokerHttp {
  constructor(
    private readonly inner: BrokerHttp,
    private readonly gate: BrokerCallGate,
    private readonly timeoutMs: number,
  ) {}

  async send(req: BrokerHttpRequest): Promise<BrokerHttpResponse> {
    const signal = req.signal ?? deadlineOf(req, this.timeoutMs);
    const answered = await this.gate.slot(req.headers['api-id'], signal);
    try {
      return await this.inner.send({ ...req, signal });
    } finally {
      answered();
    }
  }
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new BrokerError('bad_response', `answer larger than ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
