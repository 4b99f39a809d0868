import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { generateSecret, hashPassword, hashSecret, isId, newId, verifyPassword } from '../src/index.js';

describe('ids', () => {
  it('are unique, prefixed and sort in creation order', () => {
    const ids = Array.from({ length: 5000 }, () => newId('ds'));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(ids.every((id) => isId(id, 'ds')));
    assert.equal(isId(ids[0], 'org'), false);
    assert.equal(isId("ds_' OR 1=1 --"), false);
  });
});

describe('secrets', () => {
  it('hashes secrets deterministically and never returns the secret', () => {
    const secret = generateSecret('ses');
    assert.match(secret, /^isu_ses_[A-Za-z0-9_-]{43}$/);
    assert.equal(hashSecret(secret), hashSecret(secret));
    assert.notEqual(hashSecret(secret), secret);
    assert.notEqual(generateSecret('ses'), secret);
  });

  it('hashes as SHA-256 hex, so the hashes of keys and tokens stored by earlier versions still match', () => {
    assert.equal(hashSecret('isu_key_abc'), '8e7e0f604006faf8a28a1b7ea514132ed692b7672e0ab9667838fe715554583e');
    assert.equal(hashSecret('isu_key_é'), createHash('sha256').update('isu_key_é', 'utf8').digest('hex'));
  });

  it('verifies passwords with scrypt and rejects wrong ones and garbage hashes', async () => {
    const cost = { N: 1024, r: 8, p: 1 };
    const stored = await hashPassword('correct horse', cost);
    assert.match(stored, /^scrypt\$1024\$8\$1\$/);
    assert.equal(await verifyPassword('correct horse', stored), true);
    assert.equal(await verifyPassword('wrong horse', stored), false);
    assert.equal(await verifyPassword('correct horse', 'not-a-hash'), false);
    assert.notEqual(await hashPassword('correct horse', cost), stored, 'salted');
  });
});
