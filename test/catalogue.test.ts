import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createCatalogue, createCompatMetrics } from '../src/metrics/catalogue';
import { Loop } from '../src/core/loop';
import { ManualClock } from '../src/core/clock';
import { SecretRegistry } from '../src/core/secrets';

const ROOT = join(__dirname, '..', '..');

test('docs/metrics.md documents exactly the metrics the catalogue defines', () => {
  const registry = new Registry();
  createCatalogue(registry, () => undefined);
  createCompatMetrics(registry, () => undefined);
  const defined = registry
    .getMetricsAsArray()
    .map((m) => m.name)
    .sort();
  const doc = readFileSync(join(ROOT, 'docs', 'metrics.md'), 'utf8');
  const documented = [...new Set([...doc.matchAll(/`((?:broker_token|kis_token)_[a-z_]+)(?:\{[^}]*\})?`/g)].map((m) => m[1]!))]
    // Histograms are documented by their base name; queries in examples name the same metrics.
    .filter((name) => !/_(bucket|sum|count)$/.test(name))
    .sort();
  assert.deepEqual(documented, defined);
});

test('a loop is stuck when a tick runs too long, and healthy otherwise', async () => {
  const clock = new ManualClock(0);
  let release: () => void = () => undefined;
  const loop = new Loop('account:x', () => new Promise<number>((resolve) => (release = () => resolve(clock.now() + 1000))), clock, 30_000);
  const stop = new AbortController();
  void loop.start(stop.signal);
  const now = Date.now();
  assert.equal(loop.isStuck(60_000, now), false);
  assert.equal(loop.isStuck(60_000, now + 61_000), true);
  release();
  await new Promise((r) => setImmediate(r));
  assert.equal(loop.isStuck(60_000, Date.now() + 61_000), false, 'sleeping between ticks is not stuck');
  stop.abort();
  release();
});

test('the secret registry redacts every occurrence, whole, even of secrets that overlap or contain each other', () => {
  const registry = new SecretRegistry();
  for (const secret of ['123456abcdef', '123456', 'abcdef7890', 'short']) registry.add(secret);
  assert.equal(registry.redact('a 123456abcdef b'), 'a [REDACTED] b');
  assert.equal(registry.redact('123456abcdef7890'), '[REDACTED]', 'overlapping secrets are one redaction, leaving nothing of either');
  assert.equal(registry.redact('x123456x'), 'x[REDACTED]x');
  assert.equal(registry.redact('short is too short to register'), 'short is too short to register');
  assert.equal(registry.redact('nothing here'), 'nothing here');
  assert.deepEqual(registry.redactDeep({ a: ['123456', { b: 'k=abcdef7890' }], n: 1 }), { a: ['[REDACTED]', { b: 'k=[REDACTED]' }], n: 1 });
});
