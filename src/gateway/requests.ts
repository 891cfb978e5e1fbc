import type { IncomingMessage, ServerResponse } from 'node:http';
import { brokerCase } from './forward';
import type { GatewayAnswer } from './dialects';

/**
 * A request's parts as the gateway reads them: its path (plain broker paths only), its body (bounded in bytes and,
 * before the caller is known, in time), and the answers it sends back.
 */

/** The brokers' paths are plain letters, digits and `-._~` segments; anything else (percent-escapes included) is refused. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9._~-]+)*\/?$/;
/** The brokers' own path roots (docs/brokers.md): an unprefixed request under one is routed by its caller. */
const BROKER_ROOT = /^\/(oauth2|uapi|api)\//;
const TOKEN_ROOT = /^\/oauth2(\/|$)/i;

interface Target {
  /** The account named by the first segment, when it names one. */
  accountName: string | undefined;
  /** The broker's path: after the account, or the whole path. */
  path: string;
  /** The query, with its `?`, as sent. */
  search: string;
  /** Under /oauth2, in any case: a token endpoint, answered here or refused, never forwarded. */
  tokenEndpoint: boolean;
}

/** Splits `/{account}/<broker path>`; undefined for a path no broker has (escapes, odd characters). */
export function targetOf(rawUrl: string | undefined, isAccount: (name: string) => boolean): Target | undefined {
  const url = rawUrl ?? '/';
  const queryAt = url.indexOf('?');
  const pathname = queryAt < 0 ? url : url.slice(0, queryAt);
  const search = queryAt < 0 ? '' : url.slice(queryAt);
  if (!PLAIN_PATH.test(pathname) || pathname.split('/').some((segment) => segment === '.' || segment === '..')) return undefined;
  const slash = pathname.indexOf('/', 1);
  const first = pathname.slice(1, slash < 0 ? undefined : slash);
  const named = first !== '' && isAccount(first);
  const path = named ? (slash < 0 ? '/' : pathname.slice(slash)) : pathname;
  return { accountName: named ? first : undefined, path, search, tokenEndpoint: TOKEN_ROOT.test(path) };
}

/** An unprefixed path a broker serves (routed by its caller), as opposed to one that names no account at all. */
export const isBrokerPath = (path: string): boolean => BROKER_ROOT.test(path);

export class BodyError extends Error {
  constructor(readonly kind: 'too_large' | 'too_slow' | 'gone') {
    super(kind);
  }
}

/**
 * Reads a body of at most `maxBytes`, within `maxMs` when given (a token request's caller is not known until its
 * body is read: a body trickling in one byte at a time holds nothing for long).
 */
export function readBody(req: IncomingMessage, maxBytes: number, maxMs?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = maxMs === undefined ? undefined : setTimeout(() => fail(new BodyError('too_slow')), maxMs);
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onError);
    };
    const fail = (error: BodyError) => {
      done();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return fail(new BodyError('too_large'));
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = () => fail(new BodyError('gone'));
    req.on('data', onData).once('end', onEnd).once('error', onError).once('aborted', onError);
  });
}

/**
 * Sends one of the gateway's own answers, in the broker's JSON. `close`: the connection ends with it (an unknown
 * caller's body is never read; a keep-alive connection would wait for it).
 */
export function sendAnswer(res: ServerResponse, answer: GatewayAnswer, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(answer.body);
  // Capitalised as the broker writes them (see brokerCase): kis_auth.py fails on a lower-case hyphenated name.
  const headers: Record<string, string | number> = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) };
  for (const [name, value] of Object.entries(answer.headers ?? {})) headers[brokerCase(name)] = value;
  if (close) headers.Connection = 'close';
  res.writeHead(answer.status, headers);
  res.end(text);
  if (close) res.once('finish', () => res.socket?.destroySoon());
}
