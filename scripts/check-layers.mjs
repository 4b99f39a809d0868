#!/usr/bin/env node
// Enforce the layering of the architecture on what each package really uses:
// cli → server | agent | dbmanager | operator → tunnel | store | coord | notify → core.
//
// For every package it reads three things and checks each against the table below:
// - the `@insitu/*` packages its source and test files import (import and export
//   statements and dynamic `import()`, read with TypeScript's own pre-processor, so a
//   package name inside a string or a comment does not count);
// - its package.json `dependencies` and `devDependencies`;
// - its tsconfig.json project references.
// Source may import only what the table allows and what `dependencies` declares; tests may
// also import `@insitu/test-helpers` and what `devDependencies` declares, but still only
// packages the table allows (a test that needs a higher layer is a scenario for e2e/).
// Every declared `@insitu/*` dependency must be allowed, and the project references must
// be exactly the `@insitu/*` packages declared. Adding a package means adding it here.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

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

// Tests that may reach one layer further, each with its reason. Keep this list short.
const TEST_EXTRA = {
  // The failover tests drive the platform's own store (its primary-following pool) as the
  // client that must lose no acknowledged write.
  dbmanager: ['store'],
};

const root = new URL('..', import.meta.url).pathname;
const problems = [];

function tsFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (/\.(ts|tsx|mts)$/.test(entry) && !entry.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function importedPackages(file) {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const names = new Set();
  for (const ref of info.importedFiles) {
    const match = /^@insitu\/([a-z0-9-]+)/.exec(ref.fileName);
    if (match) names.add(match[1]);
  }
  return names;
}

function insituNames(deps) {
  return Object.keys(deps ?? {})
    .filter((d) => d.startsWith('@insitu/'))
    .map((d) => d.slice('@insitu/'.length));
}

const dirs = [
  ...readdirSync(join(root, 'packages')).map((d) => join(root, 'packages', d)),
  join(root, 'e2e'),
  join(root, 'bench'),
];
const nameOfDir = new Map();
for (const dir of dirs) {
  const file = join(dir, 'package.json');
  if (existsSync(file)) nameOfDir.set(dir, JSON.parse(readFileSync(file, 'utf8')).name.replace(/^@insitu\//, ''));
}

for (const dir of dirs) {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) continue;
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  const name = pkg.name.replace(/^@insitu\//, '');
  const where = relative(root, dir);
  if (!(name in ALLOWED)) {
    problems.push(`${pkg.name}: not in the layering table of scripts/check-layers.mjs`);
    continue;
  }
  const allowed = ALLOWED[name];
  const deps = insituNames(pkg.dependencies);
  const devDeps = insituNames(pkg.devDependencies);

  // Declared dependencies.
  if (allowed !== null) {
    for (const target of deps) {
      if (target === 'test-helpers') problems.push(`${pkg.name}: test-helpers may only be a devDependency`);
      else if (!allowed.includes(target))
        problems.push(`${pkg.name} may not depend on @insitu/${target} (allowed: ${allowed.join(', ') || 'none'})`);
    }
    for (const target of devDeps) {
      if (target !== 'test-helpers' && !allowed.includes(target) && !(TEST_EXTRA[name] ?? []).includes(target)) {
        problems.push(
          `${pkg.name} may not have @insitu/${target} as a devDependency (a test that needs it belongs in e2e/)`,
        );
      }
    }
  }

  // What the code really imports.
  const sourceDirs = ['src', 'bin'].map((d) => join(dir, d));
  const testDirs = ['test'].map((d) => join(dir, d));
  const own = name;
  for (const [kind, roots] of [
    ['source', sourceDirs],
    ['test', testDirs],
  ]) {
    const files = roots.flatMap(tsFiles);
    if (where === 'e2e' || where === 'bench') files.push(...tsFiles(dir).filter((f) => !files.includes(f)));
    for (const source of files) {
      for (const target of importedPackages(source)) {
        if (target === own) continue;
        const at = relative(root, source);
        const declared =
          kind === 'source' && allowed !== null
            ? deps.includes(target)
            : deps.includes(target) || devDeps.includes(target);
        if (!declared)
          problems.push(
            `${at} imports @insitu/${target}, which ${pkg.name}'s package.json does not declare${kind === 'test' ? ' (add it to devDependencies)' : ''}`,
          );
        if (allowed === null) continue;
        const ok =
          kind === 'source'
            ? allowed.includes(target)
            : target === 'test-helpers' || allowed.includes(target) || (TEST_EXTRA[name] ?? []).includes(target);
        if (!ok)
          problems.push(
            `${at} imports @insitu/${target}: ${kind === 'source' ? `${pkg.name} may use only ${allowed.join(', ') || 'nothing'}` : 'a test that needs a higher layer belongs in e2e/'}`,
          );
      }
    }
  }

  // Project references must be exactly the declared @insitu packages.
  const tsconfig = join(dir, 'tsconfig.json');
  if (existsSync(tsconfig)) {
    const parsed = ts.parseConfigFileTextToJson(tsconfig, readFileSync(tsconfig, 'utf8'));
    const refs = (parsed.config?.references ?? []).map((r) => nameOfDir.get(join(dir, r.path)) ?? `?${r.path}`);
    const declared = new Set([...deps, ...devDeps]);
    for (const ref of refs)
      if (!declared.has(ref))
        problems.push(`${where}/tsconfig.json references ${ref}, which package.json does not declare`);
    for (const dep of declared)
      if (!refs.includes(dep))
        problems.push(`${where}/tsconfig.json lacks a reference to @insitu/${dep}, which package.json declares`);
  }
}
if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`layering: ${p}\n`);
  process.exit(1);
}
process.stdout.write('layering: ok\n');
