import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, makeOrg, startApi } from './fixtures.js';

interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    details?: { issues?: Array<{ path: string; message: string }> };
  };
}

const [sqlite] = databaseTargets();

// What a new user tripped over at the edge of the REST API (issue 14).
describe('the API edge', () => {
  let api: Api;
  let org: OrgWorld;

  before(async () => {
    if (!sqlite) throw new Error('no SQLite target');
    api = await startApi(sqlite);
    org = await makeOrg(api, 'edge');
  });
  after(async () => api?.close());

  it('answers a wrong method on an existing path 405 with Allow, and an unknown path 404', async () => {
    const wrong = await api.call('PUT', '/api/v1/providers', { token: org.tokens.provider, body: {} });
    assert.equal(wrong.statusCode, 405, wrong.body);
    const body = JSON.parse(wrong.body) as ErrorBody;
    assert.equal(body.error.code, 'INSITU_METHOD_NOT_ALLOWED');
    assert.equal(body.error.requestId, wrong.headers['insitu-request-id']);
    const allow = String(wrong.headers.allow).split(', ');
    assert.ok(allow.includes('GET') && allow.includes('POST'), `Allow: ${wrong.headers.allow}`);
    assert.ok(!allow.includes('PUT'));

    // A path with a parameter: the methods of the pattern it matches.
    const patch = await api.call('PUT', `/api/v1/providers/${org.providerId}`, {
      token: org.tokens.provider,
      body: {},
    });
    assert.equal(patch.statusCode, 405, patch.body);
    assert.ok(
      ['GET', 'PATCH'].every((m) => String(patch.headers.allow).split(', ').includes(m)),
      `Allow: ${patch.headers.allow}`,
    );

    // Without a credential too: which methods a path takes is in the public OpenAPI document.
    const anonymous = await api.call('DELETE', '/api/v1/openapi.json');
    assert.equal(anonymous.statusCode, 405);

    const unknown = await api.call('GET', '/api/v1/no-such-thing', { token: org.tokens.provider });
    assert.equal(unknown.statusCode, 404);
    assert.equal((JSON.parse(unknown.body) as ErrorBody).error.code, 'INSITU_ROUTE_NOT_FOUND');
    assert.equal(unknown.headers.allow, undefined);
  });

  it('refuses __proto__ in a body as an unknown field, and no prototype changes', async () => {
    const bodies = [
      `{"orgId":"${org.orgId}","name":"p1","__proto__":{"polluted":"yes"}}`,
      // The same key spelled with an escape.
      `{"orgId":"${org.orgId}","name":"p2","\\u005f_proto__":{"polluted":"yes"}}`,
      `{"orgId":"${org.orgId}","name":"p3","nested":{"__proto__":{"polluted":"yes"}}}`,
    ];
    for (const payload of bodies) {
      const response = await api.call('POST', '/api/v1/providers', {
        token: org.tokens.provider,
        body: payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(response.statusCode, 400, response.body);
      const body = JSON.parse(response.body) as ErrorBody;
      assert.equal(body.error.code, 'INSITU_VALIDATION', payload);
      assert.match(body.error.message, /__proto__ unknown field/);
      assert.deepEqual(body.error.details?.issues, [{ path: '__proto__', message: 'unknown field' }]);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
    const list = await api.call('GET', `/api/v1/providers?org=${org.orgId}`, { token: org.tokens.provider });
    assert.ok(!/"p[123]"/.test(list.body), 'no provider was created');

    // An ordinary string that merely mentions the word is accepted.
    const fine = await api.call('POST', '/api/v1/providers', {
      token: org.tokens.provider,
      body: { orgId: org.orgId, name: 'proto-words', description: 'about __proto__ and constructor' },
    });
    assert.equal(fine.statusCode, 201, fine.body);
  });

  it('names the allowed values when a field is not one of them', async () => {
    const response = await api.call('GET', '/api/v1/orgs?status=sleeping', { token: api.adminToken });
    assert.equal(response.statusCode, 400, response.body);
    const body = JSON.parse(response.body) as ErrorBody;
    assert.equal(body.error.code, 'INSITU_VALIDATION');
    assert.match(body.error.message, /status must be one of "active", "pending" or "suspended"/);
    assert.doesNotMatch(body.error.message, /allowed values/);
  });
});
