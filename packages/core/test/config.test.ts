import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Type from 'typebox';
import { InsituError, checkEnv, loadConfig } from '../src/index.js';

const Schema = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 7070 }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object({ level: Type.String({ default: 'info' }) }, { additionalProperties: false, default: {} }),
  },
  { additionalProperties: false },
);

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'insitu-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function expectConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InsituError);
    assert.equal(error.code, 'INSITU_CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('loadConfig', () => {
  it('fills defaults and lets file < environment < flags', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'listen:\n  port: 8000\n  host: 0.0.0.0\n');
    const config = loadConfig(Schema, {
      file,
      env: { INSITU_PORT: '8001' },
      envScope: 'platform',
      flags: { log: { level: 'debug' } },
    });
    assert.deepEqual(config, { listen: { host: '0.0.0.0', port: 8001 }, log: { level: 'debug' } });
    assert.ok(Object.isFrozen(config.listen));
  });

  it('freezes its result but never the objects the caller passed in, so they can be passed again', () => {
    const WithList = Type.Object(
      {
        peers: Type.Array(Type.String({ default: 'x' }), { default: [] }),
        log: Type.Object({ level: Type.String({ default: 'info' }) }, { additionalProperties: false, default: {} }),
      },
      { additionalProperties: false },
    );
    const peers = ['a', 'b'];
    const log = {};
    const first = loadConfig(WithList, { base: { peers, log } });
    assert.ok(Object.isFrozen(first.peers));
    assert.ok(!Object.isFrozen(peers) && !Object.isFrozen(log));
    assert.deepEqual(log, {});
    const second = loadConfig(WithList, { base: { peers, log } });
    assert.deepEqual(second, { peers: ['a', 'b'], log: { level: 'info' } });
  });

  it('rejects a misspelled option and names the right one', () => {
    const file = join(dir, 'b.yaml');
    writeFileSync(file, 'listen:\n  prot: 8000\n');
    expectConfigError(() => loadConfig(Schema, { file }), /listen\.prot: unknown option; did you mean "listen\.port"/);
  });

  it('rejects wrong types, bad YAML and non-mappings', () => {
    const wrong = join(dir, 'c.yaml');
    writeFileSync(wrong, 'listen:\n  port: "eighty"\n');
    expectConfigError(() => loadConfig(Schema, { file: wrong }), /listen\.port/);
    const bad = join(dir, 'd.yaml');
    writeFileSync(bad, 'listen: [\n');
    expectConfigError(() => loadConfig(Schema, { file: bad }), /does not parse/);
    const list = join(dir, 'e.yaml');
    writeFileSync(list, '- 1\n- 2\n');
    expectConfigError(() => loadConfig(Schema, { file: list }), /mapping/);
    expectConfigError(
      () => loadConfig(Schema, { env: { INSITU_PORT: '80x' }, envScope: 'platform' }),
      /INSITU_PORT must be an integer/,
    );
  });

  it('rejects an unknown INSITU_ variable, suggesting the registered one', () => {
    expectConfigError(
      () => checkEnv({ INSITU_DATADIR: '/tmp/x' }),
      /INSITU_DATADIR \(did you mean INSITU_DATA_DIR\?\)/,
    );
    assert.doesNotThrow(() => checkEnv({ INSITU_DATA_DIR: '/tmp/x', PATH: '/bin' }));
  });
});
