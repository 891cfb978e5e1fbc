#!/usr/bin/env node
// The test files of `npm test`: several at a time (see CONCURRENCY); then, one at a time, the files whose tests count calls in each second at the broker (the gateway's
// shared budget), which a host busy with two other files would measure instead of the code. Prints each run's own
// counts as Node's runner does, then the sum; exits non-zero if any test failed.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'dist', 'test');
const ALONE = new Set(['gateway.test.js', 'gateway-hostile.test.js']);
const files = fs
  .readdirSync(dir)
  .filter((name) => name.endsWith('.test.js'))
  .sort();
// Most files wait on real time (child processes, a scaled clock) more than they compute: one more than the cores keeps
// them busy without the files measuring each other (on two cores, three at once: the suite in half the time).
const CONCURRENCY = Math.min(6, (os.availableParallelism?.() ?? os.cpus().length) + 1);
const batches = [
  { concurrency: CONCURRENCY, files: files.filter((name) => !ALONE.has(name)) },
  ...files.filter((name) => ALONE.has(name)).map((name) => ({ concurrency: 1, files: [name] })),
];

function run({ concurrency, files: names }) {
  const args = ['--test', `--test-concurrency=${concurrency}`, '--test-force-exit', '--test-timeout=1200000', ...names.map((n) => path.join(dir, n))];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => {
      // The summary lines of the TAP reporter (`# pass 12`) or the spec one (`ℹ pass 12`).
      const count = (name) => Number(output.match(new RegExp(`^(?:# |ℹ )${name} (\\d+)$`, 'm'))?.[1] ?? 0);
      resolve({ code, tests: count('tests'), pass: count('pass'), fail: count('fail') });
    });
  });
}

(async () => {
  const totals = { tests: 0, pass: 0, fail: 0 };
  let failed = false;
  for (const batch of batches) {
    const result = await run(batch);
    failed ||= result.code !== 0;
    for (const key of Object.keys(totals)) totals[key] += result[key];
  }
  process.stdout.write(`# all test files: tests ${totals.tests}, pass ${totals.pass}, fail ${totals.fail}\n`);
  process.exit(failed ? 1 : 0);
})();
