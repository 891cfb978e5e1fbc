import { hash } from 'node:crypto';

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

/** One call, no Hash object: on the gateway's path for every call, where createHash cost ~10 µs. */
export function sha256(text: string | Buffer): Buffer {
  return hash('sha256', text, 'buffer');
}

/**
 * The string and number values of a few top-level fields of a JSON object, found without parsing the whole body: an
 * answer of 82 fields (a quote) costs 50 µs to JSON.parse and a few to scan. A name counts where it stands as a key at
 * the object's first level (outside any string, one brace deep); undefined when that is not certain (a name that
 * occurs twice, a value that is no string or number), and the caller parses.
 */
export function scanJsonFields(body: Buffer, names: readonly string[]): Record<string, string | number> | undefined {
  // latin1: one character per byte, no UTF-8 decoding; the fields read are ASCII codes.
  const text = body.toString('latin1');
  const fields: Record<string, string | number> = {};
  for (const name of names) {
    const key = `"${name}"`;
    const at = text.indexOf(key);
    if (at < 0) continue;
    if (text.indexOf(key, at + key.length) >= 0 || !atTopLevel(text, at)) return undefined;
    const value = VALUE.exec(text.slice(at + key.length, at + key.length + MAX_VALUE_SCAN));
    if (!value) return undefined;
    fields[name] = value[1] !== undefined ? value[1] : Number(value[2]);
  }
  return fields;
}

/** Whether `at` is outside every string and one brace deep in `text`. */
function atTopLevel(text: string, at: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < at; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return !inString && depth === 1;
}

// What follows a field's name: a string (escapes kept as they are: the values read are codes) or a number.
const VALUE = /^\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(-?\d+(?:\.\d+)?))/;
const MAX_VALUE_SCAN = 4_096;
