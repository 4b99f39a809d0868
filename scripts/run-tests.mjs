#!/usr/bin/env node
// Run every compiled test file of every package and of e2e/ with node's test runner.
// Usage: node scripts/run-tests.mjs [filter...]   (a filter keeps files whose path contains it)
// Files run in parallel processes (TEST_CONCURRENCY, default 3; TEST_TIMEOUT_MS per test,
// default 10 min); each file starts the private servers it needs (MariaDB, etcd, ...) and
// stops them.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const dirs = [
  ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'dist', 'test')),
  join(root, 'e2e', 'dist', 'test'),
];
const files = dirs
  .flatMap(testFiles)
  .filter((file) => filters.length === 0 || filters.some((f) => relative(root, file).includes(f)))
  .sort();
if (files.length === 0) {
  process.stderr.write('run-tests: no test files found; run `npm run build` first\n');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '3';
// A test that hangs fails after this long (TEST_TIMEOUT_MS, default 10 minutes; the
// slowest test takes under a minute) instead of holding CI until its own limit.
const timeout = process.env.TEST_TIMEOUT_MS ?? '600000';
process.stdout.write(`run-tests: ${files.length} files, concurrency ${concurrency}\n`);
const child = spawn(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${timeout}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
