/**
 * The broker handlers work on a plain view of the request and return a plain answer, so the rules in
 * kis.ts and kiwoom.ts never touch express and the endpoint wrapper owns sending, faults and recording.
 */
import type { Request } from 'express';
import type { Outcome } from './types';

export type JsonBody = { kind: 'none' } | { kind: 'invalid' } | { kind: 'json'; value: unknown };

export interface BrokerRequest {
  /** Lower-cased header names, single values (the first of repeated ones). */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: JsonBody;
}

export interface Answer {
  status: number;
  body: unknown;
  outcome: Outcome;
  /** Headers sent beside the body (KIS's tr_id, tr_cont, gt_uid on a business call's success). */
  headers?: Record<string, string>;
}

/** The app parses every body as text, so a malformed one reaches the handler and gets the broker's answer. */
export function toBrokerRequest(req: Request): BrokerRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value[0] : value;
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') query[name] = first;
  }
  return { headers, query, body: parseJsonText(req.body) };
}

export function parseJsonText(raw: unknown): JsonBody {
  if (typeof raw !== 'string' || raw.trim() === '') return { kind: 'none' };
  try {
    return { kind: 'json', value: JSON.parse(raw) as unknown };
  } catch {
    return { kind: 'invalid' };
  }
}

/** A string field of a JSON object body; undefined when the body is not an object or the field not a string. */
export function bodyField(body: JsonBody, name: string): string | undefined {
  if (body.kind !== 'json' || typeof body.value !== 'object' || body.value === null || Array.isArray(body.value)) {
    return undefined;
  }
  const value = (body.value as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

export function isJsonObject(body: JsonBody): boolean {
  return body.kind === 'json' && typeof body.value === 'object' && body.value !== null && !Array.isArray(body.value);
}

/** The token of an `authorization: Bearer <token>` header; undefined for any other shape. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
