/**
 * Validation of what tests hand the simulator (faults, credentials), shared by the in-process methods and
 * the control API so both refuse the same mistakes with the same message.
 */
import { z } from 'zod';
import { ENDPOINT_IDS, type FaultSpec, type SimulatorCredential } from './types';

const endpoint = z.enum(ENDPOINT_IDS);
const count = z.number().int().positive().optional();
const jsonValue = z.unknown().refine((v) => v !== undefined, { message: 'body is required' });

const faultSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    endpoint,
    count,
    kind: z.literal('status'),
    status: z.number().int().min(100).max(599),
    body: z.unknown().optional(),
  }),
  z.strictObject({ endpoint, count, kind: z.literal('delay'), delayMs: z.number().int().nonnegative().max(600_000) }),
  z.strictObject({ endpoint, count, kind: z.literal('hang') }),
  z.strictObject({ endpoint, count, kind: z.literal('garbage') }),
  z.strictObject({ endpoint, count, kind: z.literal('truncated') }),
  z.strictObject({ endpoint, count, kind: z.literal('drop') }),
  z.strictObject({ endpoint, count, kind: z.literal('redirect'), location: z.string().min(1).optional() }),
  z.strictObject({ endpoint, count, kind: z.literal('body'), body: jsonValue }),
]);

const credentialSchema = z.strictObject({
  provider: z.enum(['kis', 'kiwoom']),
  appKey: z.string().min(1),
  appSecret: z.string().min(1),
  env: z.enum(['real', 'mock']).optional(),
});

export const statsQuerySchema = z.strictObject({ appKey: z.string().min(1).optional() });

/** Throws an Error whose message names every problem, e.g. `delayMs: Invalid input: expected number`. */
export function parseFaultSpec(input: unknown): FaultSpec {
  return parseOrThrow(faultSpecSchema, input, 'fault');
}

export function parseCredential(input: unknown): SimulatorCredential {
  return parseOrThrow(credentialSchema, input, 'credential');
}

export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new SimulatorInputError(`invalid ${what}: ${describeIssues(result.error)}`);
  return result.data;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}

/** A test handed the simulator something it cannot act on; the control API turns this into a 400. */
export class SimulatorInputError extends Error {
  override readonly name = 'SimulatorInputError';
}
