import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Value from 'typebox/value';
import {
  AgentDeploymentSchema,
  AppNameSchema,
  DatasetNameSchema,
  ServiceNameSchema,
  SlugSchema,
  hasIdShape,
  newId,
  parseAppManifest,
  refKind,
} from '../src/index.js';

const PREFIXES = ['org', 'usr', 'prv', 'agt', 'ds', 'app', 'ver', 'apr', 'dep', 'svc', 'key', 'evt', 'req'];

describe('names and ids have disjoint shapes', () => {
  it('refuses an organisation or provider name that is the id of another provider (the issue-16 attack)', () => {
    const victim = newId('prv');
    assert.equal(Value.Check(SlugSchema, victim), false);
    assert.equal(Value.Check(SlugSchema, victim.toUpperCase()), false);
    // Any `_` at all: a name can never be an id of any kind, now or with a new prefix.
    for (const name of ['acme_data', 'prv_x', '_acme', 'a_']) assert.equal(Value.Check(SlugSchema, name), false, name);
    for (const name of ['acme', 'acme-data', 'acme.data', 'a', '0day'])
      assert.equal(Value.Check(SlugSchema, name), true, name);
  });

  it('no id of any kind passes any name schema', () => {
    for (const prefix of PREFIXES) {
      const id = newId(prefix);
      for (const schema of [SlugSchema, AppNameSchema, ServiceNameSchema, DatasetNameSchema])
        assert.equal(Value.Check(schema, id), false, `${id} as a name`);
      assert.equal(hasIdShape(id), true);
    }
  });

  it('dataset names keep "_" (table names have it) but never the whole shape of an id', () => {
    for (const name of [
      'sales_2024',
      'order_items',
      'Sales',
      'ds_sales',
      'prv_01jf3q4v8p000000000000000',
      'prv_01jf3q4v8p00000000000000000',
    ]) {
      assert.equal(Value.Check(DatasetNameSchema, name), true, name);
    }
    assert.equal(Value.Check(DatasetNameSchema, newId('ds')), false);
    assert.throws(
      () =>
        parseAppManifest({
          name: 'a',
          version: '1.0.0',
          runtime: 'node',
          entry: 'i.js',
          endpoints: [{ method: 'GET', path: '/' }],
          datasets: [{ provider: 'acme', dataset: newId('ds') }],
        }),
      (e: unknown) => (e as { code?: string }).code === 'INSITU_VALIDATION',
    );
  });
});

describe('refKind: the one rule for reading a reference', () => {
  it('reads an id of the expected kind as an id, another kind of id as nothing, and everything else as a name', () => {
    const provider = newId('prv');
    assert.equal(refKind(provider, 'prv'), 'id');
    assert.equal(refKind(newId('org'), 'prv'), 'foreign-id');
    assert.equal(refKind('acme-data', 'prv'), 'name');
    // A legacy name with "_" that is not id-shaped is still a name.
    assert.equal(refKind('acme_data', 'prv'), 'name');
    // Not quite an id (one character short, upper case, a letter outside Crockford base32) is a name, and no valid name.
    assert.equal(refKind(provider.slice(0, -1), 'prv'), 'name');
    assert.equal(refKind(provider.toUpperCase(), 'prv'), 'name');
    assert.equal(refKind(`${provider.slice(0, -1)}u`, 'prv'), 'name');
  });
});

describe('the deployment wire shape', () => {
  it('carries the resolved datasets as provider ids and refuses names in their place', () => {
    const base = {
      id: 'dep_1',
      app: 'a',
      version: '1.0.0',
      digest: 'a'.repeat(64),
      replicas: 1,
      bundle: '/b',
      state: 'active',
    };
    assert.equal(
      Value.Check(AgentDeploymentSchema, { ...base, datasets: [{ providerId: newId('prv'), dataset: 'sales' }] }),
      true,
    );
    assert.equal(
      Value.Check(AgentDeploymentSchema, { ...base, datasets: [{ providerId: 'acme-data', dataset: 'sales' }] }),
      false,
    );
    assert.equal(
      Value.Check(AgentDeploymentSchema, { ...base, datasets: [{ providerId: newId('org'), dataset: 'sales' }] }),
      false,
    );
    assert.equal(Value.Check(AgentDeploymentSchema, base), false, 'the list is required: no list is not "everything"');
  });
});
