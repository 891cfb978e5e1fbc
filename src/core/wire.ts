import { createHash } from 'node:crypto';

/** What comes over the wire, read the one way everywhere: JSON bodies, header values, bearer tokens, digests. */

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The JSON in a body, or undefined when it is none. */
export function parseJson(body: string | Buffer): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** A string field of a JSON object, or undefined. */
export function stringField(json: unknown, name: string): string | undefined {
  const value = asRecord(json)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** The first value of a header (Node gives repeated ones as an array). */
export function firstHeader(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The token of an `Authorization: Bearer …` header, or undefined for any other. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

export function sha256(text: string | Buffer): Buffer {
  return createHash('sha256').update(text).digest();
}
