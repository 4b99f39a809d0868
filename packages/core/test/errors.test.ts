import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ENV_VARS, ERROR_CODES, InsituError, isUserError, toInsituError } from '../src/index.js';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

describe('error codes', () => {
  it('every code is documented in the README of core, with its status', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      const line = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(line, `${code} is missing from packages/core/README.md`);
      assert.ok(line.includes(String(status)), `${code} row does not give status ${status}`);
    }
  });

  it('the README documents no code that does not exist', () => {
    const documented = [...readme.matchAll(/`(INSITU_[A-Z_]+)`/g)].map((m) => m[1] ?? '');
    const known = new Set([...Object.keys(ERROR_CODES), ...ENV_VARS.map((v) => v.name)]);
    for (const code of documented) assert.ok(known.has(code), `README mentions unknown ${code}`);
  });

  it('every environment variable is documented', () => {
    for (const variable of ENV_VARS)
      assert.ok(readme.includes(`\`${variable.name}\``), `${variable.name} undocumented`);
  });

  it('maps codes to statuses and tells user errors from incidents', () => {
    const notFound = new InsituError('INSITU_DATASET_NOT_FOUND', 'no such dataset');
    assert.equal(notFound.status, 404);
    assert.equal(isUserError(notFound), true);
    const internal = toInsituError(new TypeError('boom'));
    assert.equal(internal.code, 'INSITU_INTERNAL');
    assert.equal(internal.message, 'internal error', 'internal details are not exposed');
    assert.equal(isUserError(internal), false);
  });

  it('instanceof works across copies of the class (Symbol.for brand)', () => {
    const foreign = Object.assign(new Error('x'), { [Symbol.for('insitu.error')]: true });
    assert.ok(foreign instanceof InsituError);
    assert.ok(!(new Error('plain') instanceof InsituError));
  });
});
