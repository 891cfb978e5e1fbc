#!/usr/bin/env node
// After tsc: removes what dist/ still holds of sources that no longer exist (a test file renamed or merged would
// otherwise go on running from its old output, since the test runner lists dist/test).
const { existsSync, readdirSync, rmSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');

function prune(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    const source = join(ROOT, relative(DIST, path)).replace(/\.js(\.map)?$/, '.ts');
    if (/\.js(\.map)?$/.test(entry) && !existsSync(source)) rmSync(path);
  }
}

if (existsSync(DIST)) prune(DIST);
