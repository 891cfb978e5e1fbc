import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';

/**
 * Revoked local tokens, kept until each would have expired anyway: in memory for the checks, and in a store that
 * outlives the process (a file in the state directory; with a shared store, Redis, so every replica refuses a token
 * one of them revoked). Bounded by expiry, not by a count that newer revocations could push an old one out of; and
 * per client, since a client may mint and revoke as often as it likes: past MAX_PER_CLIENT, its revoked tokens are
 * folded into one entry that ends every token of that client made before now (it asks for a new one, locally).
 */

const entrySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('token'), jti: z.string().max(64), client: z.string().max(200), until: z.number() }),
  z.object({ kind: z.literal('client'), client: z.string().max(200), before: z.number(), until: z.number() }),
]);
type RevocationEntry = z.infer<typeof entrySchema>;
const fileSchema = z.object({ version: z.literal(1), entries: z.array(entrySchema).max(100_000) });

/** Where revocations outlive the process. */
interface RevocationStore {
  load(now: number): Promise<RevocationEntry[]>;
  /** Every live entry: the store keeps them all (and may forget what is no longer among them). */
  save(all: readonly RevocationEntry[]): Promise<void>;
}

const MAX_PER_CLIENT = 64;
/** Longer than any local token lives (a real token's day, bounded by maxLifetime): a folded entry covers them all. */
const LONGEST_TOKEN_MS = 48 * 3_600_000;

export class Revocations {
  private readonly tokens = new Map<string, RevocationEntry & { kind: 'token' }>();
  private readonly clients = new Map<string, RevocationEntry & { kind: 'client' }>();

  constructor(private readonly store: RevocationStore) {}

  /** Reads what was revoked before (at start, and from a shared store now and then). */
  async refresh(now: number): Promise<void> {
    for (const entry of await this.store.load(now)) this.remember(entry, now);
  }

  isRevoked(token: { jti: string; client: string; issuedAt: number }): boolean {
    if (this.tokens.has(token.jti)) return true;
    const folded = this.clients.get(token.client);
    return folded !== undefined && token.issuedAt < folded.before;
  }

  async revoke(token: { jti: string; client: string; expiresAt: number }, now: number): Promise<void> {
    this.prune(now);
    this.remember({ kind: 'token', jti: token.jti, client: token.client, until: token.expiresAt }, now);
    const own = [...this.tokens.values()].filter((entry) => entry.client === token.client);
    if (own.length > MAX_PER_CLIENT) {
      for (const entry of own) this.tokens.delete(entry.jti);
      this.remember({ kind: 'client', client: token.client, before: Math.floor(now / 1000) * 1000, until: now + LONGEST_TOKEN_MS }, now);
    }
    await this.store.save(this.entries());
  }

  /** Live entries: what the store holds after a save. */
  entries(): RevocationEntry[] {
    return [...this.tokens.values(), ...this.clients.values()];
  }

  private remember(entry: RevocationEntry, now: number): void {
    if (entry.until <= now) return;
    if (entry.kind === 'token') this.tokens.set(entry.jti, entry);
    else {
      const known = this.clients.get(entry.client);
      if (!known || known.before < entry.before) this.clients.set(entry.client, entry);
    }
  }

  private prune(now: number): void {
    for (const [jti, entry] of this.tokens) if (entry.until <= now) this.tokens.delete(jti);
    for (const [client, entry] of this.clients) if (entry.until <= now) this.clients.delete(client);
  }
}

/** Revocations in a JSON file beside the account states (one sidecar, or each replica's local copy). */
export class FileRevocationStore implements RevocationStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'gateway-revocations.json');
  }

  async load(now: number): Promise<RevocationEntry[]> {
    let content: string;
    try {
      ({ content } = await readRegularFile(this.path, { followSymlinks: false, maxBytes: 16 * 1024 * 1024 }));
    } catch (error) {
      if (error instanceof FileReadError && error.code === 'missing') return [];
      throw error;
    }
    const parsed = fileSchema.safeParse(parseJson(content));
    // A damaged list cannot be trusted to hold every revocation; refusing to start says so, where ignoring it would reopen them.
    if (!parsed.success) throw new Error(`${this.path} is not a list of gateway revocations; repair or remove it (removing it forgets the revocations)`);
    return parsed.data.entries.filter((entry) => entry.until > now);
  }

  async save(all: readonly RevocationEntry[]): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify({ version: 1, entries: all })}\n`, { mode: 0o600, dirMode: 0o700 });
  }
}

/**
 * Revocations shared by the replicas in Redis (a sorted set, each entry scored by its end), with the file as this
 * replica's copy: Redis out of reach, the replica still refuses what it knew was revoked.
 */
export class SharedRevocationStore implements RevocationStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly local: FileRevocationStore,
  ) {
    this.key = `${keyPrefix}gateway-revocations`;
  }

  async load(now: number): Promise<RevocationEntry[]> {
    const local = await this.local.load(now);
    let members: string[];
    try {
      await this.redis.zremrangebyscore(this.key, '-inf', now);
      members = await this.redis.zrangebyscore(this.key, now, '+inf');
    } catch {
      return local;
    }
    const shared = members.flatMap((member) => {
      const parsed = entrySchema.safeParse(parseJson(member));
      return parsed.success ? [parsed.data] : [];
    });
    return [...local, ...shared];
  }

  async save(all: readonly RevocationEntry[]): Promise<void> {
    await this.local.save(all);
    // Every live entry each time (a few per client at most): one missed while Redis was out reaches it with the next.
    const pairs = all.flatMap((entry) => [entry.until, JSON.stringify(entry)]);
    if (pairs.length > 0) await this.redis.zadd(this.key, ...pairs).catch(() => undefined);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
