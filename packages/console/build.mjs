#!/usr/bin/env node
// Build the console: type-check the sources, bundle src/main.tsx and src/styles.css with
// esbuild into dist/public/assets/ (content-hashed names), write dist/public/index.html
// that names them, and a gzip copy of each file that the server sends to browsers that
// accept it. Prints the compressed first-load size (the budget is 300 KB).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, 'dist', 'public');

if (!process.argv.includes('--no-check')) {
  const tsc = join(here, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const checked = spawnSync(process.execPath, [tsc, '--noEmit', '-p', join(here, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  if (checked.status !== 0) process.exit(checked.status ?? 1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const result = await build({
  absWorkingDir: here,
  entryPoints: [join(here, 'src', 'main.tsx'), join(here, 'src', 'styles.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: join(out, 'assets'),
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const js = outputs.find((file) => file.endsWith('.js'));
const css = outputs.find((file) => file.endsWith('.css'));
const page = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', `/console/assets/${css}`)
  .replace('%JS%', `/console/assets/${js}`);
writeFileSync(join(out, 'index.html'), page);

let compressed = 0;
for (const file of ['index.html', ...readdirSync(join(out, 'assets')).map((name) => join('assets', name))]) {
  const gz = gzipSync(readFileSync(join(out, file)), { level: 9 });
  writeFileSync(join(out, `${file}.gz`), gz);
  compressed += gz.length;
}
writeFileSync(join(out, 'build.json'), JSON.stringify({ js, css, firstLoadGzipBytes: compressed }, null, 2) + '\n');
process.stdout.write(`console: built ${js} and ${css}; first load ${(compressed / 1024).toFixed(1)} KiB gzip\n`);
