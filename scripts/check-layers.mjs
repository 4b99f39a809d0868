#!/usr/bin/env node
// Enforce the layering of DESIGN.md on package.json dependencies:
// cli → server | agent | dbmanager | operator → tunnel | store | coord | notify → core.
// A package may depend only on the packages listed for it here (test-helpers is a
// dev dependency of anyone). Adding a package means adding it here, deliberately.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const ALLOWED = {
  core: [],
  'test-helpers': ['core'],
  store: ['core'],
  coord: ['core'],
  notify: ['core'],
  tunnel: ['core'],
  sdk: ['core'],
  server: ['core', 'store', 'coord', 'tunnel', 'notify'],
  agent: ['core', 'tunnel', 'sdk'],
  dbmanager: ['core', 'coord', 'notify'],
  operator: ['core', 'coord', 'notify'],
  console: ['core'],
  cli: ['core', 'store', 'coord', 'tunnel', 'notify', 'server', 'agent', 'sdk', 'dbmanager', 'operator'],
  e2e: null, // scenarios may use anything
  bench: null,
};

const root = new URL('..', import.meta.url).pathname;
const problems = [];
const dirs = [...readdirSync(join(root, 'packages')).map((d) => join(root, 'packages', d)), join(root, 'e2e'), join(root, 'bench')];
for (const dir of dirs) {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) continue;
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  const name = pkg.name.replace(/^@insitu\//, '');
  if (!(name in ALLOWED)) {
    problems.push(`${pkg.name}: not in the layering table of scripts/check-layers.mjs`);
    continue;
  }
  const allowed = ALLOWED[name];
  if (allowed === null) continue;
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    if (!dep.startsWith('@insitu/')) continue;
    const target = dep.slice('@insitu/'.length);
    if (target === 'test-helpers') problems.push(`${pkg.name}: test-helpers may only be a devDependency`);
    else if (!allowed.includes(target)) problems.push(`${pkg.name} may not depend on ${dep} (allowed: ${allowed.join(', ') || 'none'})`);
  }
}
if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`layering: ${p}\n`);
  process.exit(1);
}
process.stdout.write('layering: ok\n');
