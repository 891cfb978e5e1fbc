import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CallAbort } from '../core/call-abort';

/**
 * One call to the broker on a client's behalf, through undici's keep-alive pool: the client's headers minus the
 * hop-by-hop ones and its credentials, plus the real ones. The answer's body is read into memory up to
 * INSPECT_BYTES, enough for any error or order answer, so the gateway can tell a dead token or a spent budget
 * and send the call again; a longer answer (a chart, a long list) is streamed on as it comes, unread.
 */

const INSPECT_BYTES = 64 * 1024;

// RFC 9110 §7.6.1, plus what a proxy must not pass on (host, length: undici sets them for the new request).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
]);

/** What a client sent that is its own, never the broker's: its local credentials and token. */
const CLIENT_CREDENTIALS = new Set(['authorization', 'appkey', 'appsecret', 'secretkey']);

export function outgoingHeaders(incoming: IncomingHttpHeaders, real: Record<string, string>): Record<string, string> {
  const named = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || CLIENT_CREDENTIALS.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { ...headers, ...real };
}

/**
 * A header name as a broker writes it: undici hands names lower-cased, and kis_auth.py turns every
 * all-lower-case name into a namedtuple field, which "content-type" cannot be (ValueError: every call of an
 * official sample would fail through the gateway). KIS's own headers (tr_id, tr_cont, gt_uid) are lower-case
 * and no hyphen, and stay as they are; hyphenated ones take the usual capitals, as KIS sends them.
 */
export function brokerCase(name: string): string {
  return name.includes('-') ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => `${dash}${letter.toUpperCase()}`) : name;
}

function answerHeaders(upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = new Set(
    String(upstream.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    headers[brokerCase(name)] = value;
  }
  return headers;
}

export type BrokerAnswer =
  /** The whole answer, read: it can be inspected, and dropped for a retry. */
  | { kind: 'read'; status: number; headers: Record<string, string | string[]>; body: Buffer }
  /** A long answer: what was read so far and the rest, still to stream to the client. */
  | { kind: 'streaming'; status: number; headers: Record<string, string | string[]>; head: Buffer[]; rest: Readable };

interface ForwardRequest {
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutMs: number;
  /** The client went away: the request to the broker ends too. */
  signal?: CallAbort;
}

export async function forward(dispatcher: Dispatcher, req: ForwardRequest): Promise<BrokerAnswer> {
  const response = await dispatcher.request({
    origin: req.origin,
    path: req.path,
    method: req.method,
    headers: req.headers,
    body: req.body && req.body.length > 0 ? req.body : null,
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
    signal: req.signal,
  });
  const headers = answerHeaders(response.headers);
  const body = response.body;
  // Listeners, not `for await`: leaving an async iterator early destroys the stream this hands on.
  return new Promise<BrokerAnswer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= INSPECT_BYTES) return;
      body.pause();
      stop();
      resolve({ kind: 'streaming', status: response.statusCode, headers, head: chunks, rest: body });
    };
    const onEnd = () => {
      stop();
      resolve({ kind: 'read', status: response.statusCode, headers, body: Buffer.concat(chunks) });
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/** The broker's answer to the client as it came: read ones at once, larger ones streamed. */
export function sendBroker(res: ServerResponse, answer: BrokerAnswer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(answer.status, answer.headers);
  if (answer.kind === 'read') {
    res.end(answer.body);
    return;
  }
  for (const chunk of answer.head) res.write(chunk);
  answer.rest.pipe(res);
  answer.rest.once('error', () => res.destroy());
}
