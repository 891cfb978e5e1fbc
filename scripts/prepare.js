#!/usr/bin/env node
/**
 * npm's `prepare`: builds dist/ unless it is already newer than every source file. npm runs `prepare` at `npm ci`
 * (a fresh clone needs the build) and also at every first `npx broker-token-sidecar` in this folder: npx installs the
 * folder into its cache as a package, and that runs `prepare`. A full `tsc` there cost 12 s on an idle machine and
 * 55 s on a busy one before `status` printed a line; a build that is current costs one walk of the source tree.
 */
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const OUTPUT = join(ROOT, 'dist', 'src', 'cli.js');
const SOURCES = ['src', 'test', 'bench', 'tsconfig.json', 'package.json'];

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), stat.mtimeMs);
}

const built = existsSync(OUTPUT) ? statSync(OUTPUT).mtimeMs : -1;
const sources = Math.max(...SOURCES.filter((p) => existsSync(join(ROOT, p))).map((p) => newestMtime(join(ROOT, p))));
if (built >= sources) {
  process.stdout.write('dist/ is newer than every source file: no build needed\n');
} else {
  const run = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
  require('./prune-dist');
}
