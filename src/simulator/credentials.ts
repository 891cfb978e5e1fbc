/**
 * The app keys the simulated brokers know. Secrets are compared exactly, so a trailing newline read from a
 * secret file fails here just as it does at the real broker.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SimulatedEnv, SimulatedProvider, SimulatorCredential } from './types';

type CredentialCheck = { ok: true; credential: SimulatorCredential } | { ok: false; reason: 'unknown_key' | 'wrong_secret' };

export class CredentialBook {
  private readonly byKey = new Map<string, SimulatorCredential>();

  constructor(credentials: readonly SimulatorCredential[]) {
    for (const c of credentials) this.add(c);
  }

  /** Adding a known app key replaces it, which is how a test rotates a secret. */
  add(credential: SimulatorCredential): void {
    this.byKey.set(credential.appKey, { ...credential, env: credential.env ?? 'real' });
  }

  /** A key registered for the other broker is unknown here: the two brokers share no accounts. */
  find(provider: SimulatedProvider, appKey: string): SimulatorCredential | undefined {
    const c = this.byKey.get(appKey);
    return c && c.provider === provider ? c : undefined;
  }

  check(provider: SimulatedProvider, appKey: string, secret: string): CredentialCheck {
    const credential = this.find(provider, appKey);
    if (!credential) return { ok: false, reason: 'unknown_key' };
    if (credential.appSecret !== secret) return { ok: false, reason: 'wrong_secret' };
    return { ok: true, credential };
  }
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ALNUM_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Deterministic bytes from a seed (so fixtures are stable), random bytes without one. */
function byteSource(seed: string | undefined): (n: number) => Buffer {
  if (seed === undefined) return (n) => randomBytes(n);
  let counter = 0;
  return (n) => {
    const chunks: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const chunk = createHash('sha256').update(`${seed}:${counter++}`).digest();
      chunks.push(chunk);
      have += chunk.length;
    }
    return Buffer.concat(chunks).subarray(0, n);
  };
}

function draw(bytes: (n: number) => Buffer, alphabet: string, length: number): string {
  // Modulo bias is irrelevant here: these only need to look like keys.
  return [...bytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

/**
 * A credential shaped like the real ones: KIS app keys are 36 characters starting with "PS", app secrets 180
 * characters of base64; Kiwoom keys and secrets are 43 characters (as seen in the wild). Never whitespace.
 */
export function generateCredential(provider: SimulatedProvider, seed?: string, env: SimulatedEnv = 'real'): SimulatorCredential {
  const bytes = byteSource(seed === undefined ? undefined : `${provider}:${seed}`);
  if (provider === 'kis') {
    return {
      provider,
      env,
      appKey: `PS${draw(bytes, ALNUM_ALPHABET, 34)}`,
      appSecret: draw(bytes, BASE64_ALPHABET, 180),
    };
  }
  return {
    provider,
    env,
    appKey: draw(bytes, ALNUM_ALPHABET, 43),
    appSecret: draw(bytes, ALNUM_ALPHABET, 43),
  };
}
