import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import * as tar from 'tar';
import { bundleDigest, installBundle, parseAgentConfig, readManifest } from '../src/index.js';

function code(error: unknown): string {
  return error instanceof InsituError ? error.code : String(error);
}

describe('bundles: canonical digest, verification, manifest', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('insitu-agent-bundle-');
  });
  after(async () => {
    await removeDir(dir);
  });

  function app(name: string, files: Record<string, string> = {}): string {
    const root = join(dir, name);
    mkdirSync(join(root, 'lib'), { recursive: true });
    writeFileSync(
      join(root, 'insitu.json'),
      JSON.stringify({
        name: 'demo',
        version: '1.0.0',
        runtime: 'node',
        entry: 'main.js',
        endpoints: [{ method: 'GET', path: '/' }],
      }),
    );
    writeFileSync(join(root, 'main.js'), 'console.log(1)\n');
    writeFileSync(join(root, 'lib', 'util.js'), 'export const x = 1;\n');
    for (const [path, text] of Object.entries(files)) writeFileSync(join(root, path), text);
    return root;
  }

  it('gives the same digest for the same files, whatever their times, and for a tarball of them', async () => {
    const a = app('a');
    const b = app('b');
    utimesSync(join(b, 'main.js'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.equal(await bundleDigest(a), await bundleDigest(b));
    const tarball = join(dir, 'a.tar.gz');
    await tar.c({ gzip: true, file: tarball, cwd: a }, ['main.js', 'lib', 'insitu.json']);
    const installed = await installBundle(tarball, await bundleDigest(a), join(dir, 'cache'));
    assert.equal(installed.manifest.name, 'demo');
    writeFileSync(join(b, 'main.js'), 'console.log(2)\n');
    assert.notEqual(await bundleDigest(a), await bundleDigest(b), 'content counts');
    const c = app('c');
    chmodSync(join(c, 'main.js'), 0o755);
    assert.notEqual(await bundleDigest(a), await bundleDigest(c), 'the executable bit counts');
  });

  it('refuses a bundle whose digest is not the approved one, and keeps nothing of it', async () => {
    const a = app('d');
    await assert.rejects(
      installBundle(a, 'f'.repeat(64), join(dir, 'cache2')),
      (e: unknown) => code(e) === 'INSITU_BUNDLE_DIGEST_MISMATCH',
    );
    await assert.rejects(
      installBundle(a, 'not-a-digest', join(dir, 'cache2')),
      (e: unknown) => code(e) === 'INSITU_BUNDLE_INVALID',
    );
  });

  it('refuses links that leave the bundle, and invalid manifests, with clear messages', async () => {
    const a = app('e');
    symlinkSync('/etc/passwd', join(a, 'passwd'));
    await assert.rejects(
      bundleDigest(a),
      (e: unknown) => code(e) === 'INSITU_BUNDLE_INVALID' && /leaves the bundle/.test((e as Error).message),
    );
    const b = app('f', {
      'insitu.json': JSON.stringify({
        name: 'demo',
        version: 'one',
        runtime: 'node',
        entry: 'missing.js',
        endpoints: [{ method: 'GET', path: '/' }],
      }),
    });
    await assert.rejects(
      readManifest(b),
      (e: unknown) => code(e) === 'INSITU_BUNDLE_INVALID' && /version/.test((e as Error).message),
    );
    const c = app('g', {
      'insitu.json': JSON.stringify({
        name: 'demo',
        version: '1.0.0',
        runtime: 'node',
        entry: 'missing.js',
        endpoints: [{ method: 'GET', path: '/' }],
      }),
    });
    await assert.rejects(readManifest(c), (e: unknown) => /entry missing\.js is not a file/.test((e as Error).message));
  });
});

describe('agent.yaml validation', () => {
  const parse = (raw: Record<string, unknown>) => parseAgentConfig(raw, { what: 'agent.yaml', baseDir: '/srv' });
  const message = (raw: Record<string, unknown>): string => {
    try {
      parse(raw);
    } catch (error) {
      assert.equal(code(error), 'INSITU_CONFIG_INVALID');
      return (error as Error).message;
    }
    assert.fail('accepted');
  };

  it('fills defaults: no sandbox escape hatch, limits, sync interval; resolves paths against the file', () => {
    const config = parse({ sources: [{ name: 'shop', kind: 'sqlite', path: 'shop.db' }] });
    assert.equal(config.sandbox.allowNoSandbox, false);
    assert.equal(config.sync.intervalSeconds, 300);
    assert.equal(config.limits.maxRows, 1_000_000);
    assert.equal((config.sources[0] as { path: string }).path, '/srv/shop.db');
  });

  it('takes tunnel.workConnections from 0 to 256, 64 by default', () => {
    assert.equal(parse({}).tunnel.workConnections, 64);
    assert.equal(parse({ tunnel: { workConnections: 0 } }).tunnel.workConnections, 0);
    assert.match(message({ tunnel: { workConnections: 257 } }), /tunnel\.workConnections/);
    assert.match(message({ tunnel: { workConnections: -1 } }), /tunnel\.workConnections/);
    assert.match(message({ tunnel: { workConnection: 8 } }), /did you mean "tunnel.workConnections"/);
  });

  it('names the wrong option and where it is', () => {
    assert.match(
      message({ sources: [{ name: 'pg', kind: 'postgres', host: 'db', database: 'x', user: 'r', pasword: 'x' }] }),
      /sources\[0\].*did you mean "passwordFile"|sources\[0\].*passwordEnv/,
    );
    assert.match(
      message({ sources: [{ name: 'x', kind: 'oracle' }] }),
      /sources\[0\]: "kind" must be one of sqlite, csv, postgres, mysql, got "oracle"/,
    );
    assert.match(message({ sandbox: { allowNoSandbox: 'yes' } }), /sandbox\.allowNoSandbox/);
    assert.match(message({ sync: { interval: 5 } }), /sync.interval: unknown option; allowed here: intervalSeconds/);
    assert.match(message({ limits: { maxRow: 5 } }), /did you mean "limits.maxRows"/);
    assert.match(
      message({
        sources: [
          { name: 'a', kind: 'sqlite', path: 'a' },
          { name: 'a', kind: 'sqlite', path: 'b' },
        ],
      }),
      /declared twice/,
    );
    assert.match(
      message({ sources: [{ name: 'my', kind: 'mysql', database: 'x', user: 'r' }] }),
      /give "host" or "socket"/,
    );
    assert.match(
      message({
        sources: [{ name: 'my', kind: 'mysql', host: 'h', database: 'x', user: 'r', passwordEnv: 'INSITU_X' }],
      }),
      /reserved/,
    );
    assert.match(
      message({
        sources: [{ name: 'c', kind: 'csv', files: '*.csv', datasets: { a: { columns: { x: { type: 'float' } } } } }],
      }),
      /datasets\.a\.columns\.x\.type/,
    );
  });
});
