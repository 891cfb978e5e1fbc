import { z } from 'zod';

/**
 * "Did you mean": the keys a config object accepts at a place in the file, and the one nearest a misspelt key,
 * as the CLI already does for a misspelt option.
 */

/** The keys the schema accepts for the object at `path` of `data` (following lists and tagged unions), if it is one. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], data: unknown): string[] {
  let current: z.ZodType | undefined = schema;
  let value = data;
  for (const step of [...path, undefined]) {
    current = current && unwrap(current, value);
    if (step === undefined || current === undefined) break;
    value = (value as Record<PropertyKey, unknown> | undefined)?.[step];
    if (current instanceof z.ZodObject) current = (current.shape as Record<string, z.ZodType>)[String(step)];
    else if (current instanceof z.ZodArray) current = current.element as z.ZodType;
    else current = undefined;
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

/** Looks through optional, default and preprocess wrappers, and picks a tagged union's member by its tag. */
function unwrap(schema: z.ZodType, value: unknown): z.ZodType | undefined {
  let current: z.ZodType = schema;
  for (;;) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable) current = current.unwrap() as z.ZodType;
    else if (current instanceof z.ZodPipe) current = current.in as z.ZodType;
    else if (current instanceof z.ZodDiscriminatedUnion) {
      const tag = current.def.discriminator;
      const wanted = (value as Record<string, unknown> | undefined)?.[tag];
      const option = (current.options as z.ZodType[]).find(
        (o) => o instanceof z.ZodObject && (o.shape[tag] as z.ZodLiteral).def.values.includes(wanted as never),
      );
      if (!option) return undefined;
      current = option;
    } else return current;
  }
}

/**
 * The candidate closest to `word` by edit distance, when it is close enough to be a typo of it, or one that `word`
 * spells out at length (stateDirectory for stateDir).
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const spelledOut = candidates.find((c) => c.length >= 4 && lower.startsWith(c.toLowerCase()));
  if (spelledOut) return spelledOut;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(word.length / 3)) ? best.candidate : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}
