import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InsituError, parseAppManifest } from '../src/index.js';

const valid = {
  name: 'sales-report',
  version: '1.2.0-beta.1',
  runtime: 'node',
  entry: 'src/main.js',
  datasets: [{ provider: 'demo-retail', dataset: 'sales' }],
  endpoints: [{ method: 'GET', path: '/totals/{store}' }],
};

function problem(value: unknown): string {
  try {
    parseAppManifest(value, { what: 'insitu.json' });
  } catch (error) {
    assert.ok(error instanceof InsituError);
    assert.equal(error.code, 'INSITU_VALIDATION');
    return error.message;
  }
  assert.fail('the manifest was accepted');
}

describe('app manifest (insitu.json)', () => {
  it('accepts a $schema naming the published JSON Schema (for editors)', () => {
    assert.equal(
      parseAppManifest({ ...valid, $schema: 'https://platform.example/api/v1/schemas/insitu.json' }).name,
      'sales-report',
    );
  });

  it('fills limits and replicas with their defaults', () => {
    const manifest = parseAppManifest(valid);
    assert.equal(manifest.replicas, 1);
    assert.deepEqual(manifest.limits, {
      memoryMb: 256,
      cpuSeconds: 3600,
      processes: 64,
      openFiles: 256,
      requestTimeoutMs: 30_000,
    });
    assert.equal(parseAppManifest({ ...valid, limits: { memoryMb: 64 } }).limits.memoryMb, 64);
  });

  it('names what is wrong, with the option that was probably meant', () => {
    assert.match(problem({ ...valid, version: '1.2' }), /version/);
    assert.match(problem({ ...valid, runtime: 'ruby' }), /runtime/);
    assert.match(problem({ ...valid, replica: 2 }), /did you mean "replicas"/);
    assert.match(problem({ ...valid, limits: { memoryMB: 64 } }), /did you mean "limits.memoryMb"/);
  });

  it('refuses an entry that leaves the bundle', () => {
    for (const entry of ['../x.js', '/etc/passwd', 'a/../../b', './x'])
      assert.match(problem({ ...valid, entry }), /entry/, entry);
  });

  it('needs endpoints or an OpenAPI document, and no dataset twice', () => {
    const { endpoints: _e, ...noEndpoints } = valid;
    assert.match(problem(noEndpoints), /endpoints/);
    assert.equal(parseAppManifest({ ...noEndpoints, openapi: 'openapi.json' }).openapi, 'openapi.json');
    assert.match(problem({ ...valid, datasets: [valid.datasets[0], valid.datasets[0]] }), /listed twice/);
  });
});
