import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLE_NAMES } from '../src/examples';
import { replicaTools } from './replicas';

/**
 * Each example under examples/, run exactly as its README tells a newcomer to: `npm run example -- NAME` from the
 * repository's root, which starts the simulator, the sidecar on the example's own sidecar.yaml and the example's
 * bot (the replicas of kis_auth.py and python-kis here), and exits 0 only when the bot got the sidecar's token and
 * the broker saw no token request from it.
 */

const ROOT = join(__dirname, '..', '..');
const tools = replicaTools();
/** Examples whose bot needs a client library (kis_auth.py, python-kis); the others need Python alone. */
const CLIENT_LIBRARIES = new Set(['kis-auth', 'python-kis', 'gateway', 'realtime']);

function npmRunExample(name: string): Promise<{ status: number | null; output: string }> {
  const child = spawn('npm', ['run', 'example', '--', name], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    }),
  );
}

describe('examples/: each runs against the simulator with `npm run example -- NAME`', () => {
  test('every folder under examples/ has its run, and every run its folder', () => {
    const folders = readdirSync(join(ROOT, 'examples')).filter((f) => statSync(join(ROOT, 'examples', f)).isDirectory());
    assert.deepEqual([...folders].sort(), [...EXAMPLE_NAMES].sort());
  });

  for (const name of EXAMPLE_NAMES) {
    test(`npm run example -- ${name}`, async (t) => {
      if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
      const run = await npmRunExample(name);
      assert.equal(run.status, 0, run.output);
      assert.match(run.output, new RegExp(`^example ${name}: passed$`, 'm'));
      if (CLIENT_LIBRARIES.has(name)) assert.match(run.output, /using its replica|using the official|as installed/, 'it says which client it ran');
      assert.match(run.output, /the broker saw \d+ token request\(s\), all from the sidecar/);
    });
  }

  test('an unknown example: exit 2 with the names', async () => {
    const run = await npmRunExample('nosuch');
    assert.equal(run.status, 2, run.output);
    assert.match(run.output, /no example named "nosuch": one of kis-auth, python-kis, json, kiwoom, gateway, realtime/);
  });
});
