import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { defaultServerConfig, startServer, type RunningServer } from '../src/index.js';

/*
 * Issue 14: the insitu.json reference is published as JSON Schema by every server, without
 * a credential, and it is the schema submissions are checked against: what it accepts and
 * refuses is what a submission would.
 */
describe('GET /api/v1/schemas/insitu.json', () => {
  let dir = '';
  let server: RunningServer;
  before(async () => {
    dir = await makeTempDir('insitu-manifest-schema-');
    server = await startServer({
      config: defaultServerConfig({ listen: { port: 0 }, log: { level: 'silent' } }),
      dataDir: dir,
    });
  });
  after(async () => {
    await server?.close();
    if (dir) await removeDir(dir);
  });

  it('serves the manifest schema to anyone, and it accepts a good manifest and refuses bad ones', async () => {
    const response = await fetch(`${server.url}/api/v1/schemas/insitu.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const schema = (await response.json()) as Record<string, unknown>;
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    const good = {
      name: 'region-totals',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      datasets: [{ provider: 'acme-data', dataset: 'orders' }],
      endpoints: [{ method: 'GET', path: '/totals' }],
    };
    assert.ok(validate(good), JSON.stringify(validate.errors));
    assert.ok(
      validate({ ...good, $schema: `${server.url}/api/v1/schemas/insitu.json` }),
      'a manifest may name its schema',
    );
    assert.equal(validate({ ...good, runtime: 'cobol' }), false, 'an unknown runtime');
    assert.equal(validate({ ...good, surprise: true }), false, 'an unknown field');
    const { name: _name, ...nameless } = good;
    assert.equal(validate(nameless), false, 'no name');
  });
});
