import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, datasetBody, expectStatus, makeOrg, startApi } from './fixtures.js';

const TABLES = [
  'orgs',
  'users',
  'memberships',
  'sessions',
  'providers',
  'enrolment_tokens',
  'agents',
  'datasets',
  'dataset_tags',
  'dataset_columns',
] as const;

for (const target of databaseTargets()) {
  describe(`bad input on ${target.dialect}`, () => {
    let api: Api;
    let org: OrgWorld;

    /** Row counts of every table: bad input must change none of them. */
    async function snapshot(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      for (const table of TABLES) {
        const result = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(api.store.db);
        out[table] = Number(result.rows[0]?.n);
      }
      return out;
    }

    async function expectRefused(
      request: { method: string; url: string; body?: unknown; token?: string; headers?: Record<string, string> },
      status: number,
      code: string,
    ): Promise<void> {
      const response = await api.call(request.method, request.url, {
        ...(request.token ? { token: request.token } : {}),
        ...(request.body !== undefined ? { body: request.body } : {}),
        ...(request.headers ? { headers: request.headers } : {}),
      });
      const label = `${request.method} ${request.url} ${typeof request.body === 'string' ? request.body.slice(0, 60) : JSON.stringify(request.body)?.slice(0, 60)}`;
      assert.equal(response.statusCode, status, `${label}: ${response.body.slice(0, 300)}`);
      const body = JSON.parse(response.body) as { error: { code: string; message: string; requestId: string } };
      assert.equal(body.error.code, code, label);
      assert.ok(body.error.message.length > 0);
      assert.equal(body.error.requestId, response.headers['insitu-request-id']);
    }

    before(async () => {
      api = await startApi(target);
      org = await makeOrg(api, 'victim');
    });
    after(async () => api.close());

    it('refuses malformed JSON, wrong content types, oversize bodies and prototype pollution', async () => {
      const before = await snapshot();
      const json = { 'content-type': 'application/json' };
      const t = org.tokens.provider;
      for (const body of ['{"name": ', '{name: "x"}', '[1,2', 'null x', '\u0000', '{"a":1}{"b":2}']) {
        await expectRefused(
          { method: 'POST', url: '/api/v1/providers', token: t, body, headers: json },
          400,
          'INSITU_BAD_JSON',
        );
      }
      await expectRefused({ method: 'POST', url: '/api/v1/sessions', body: '', headers: json }, 400, 'INSITU_BAD_JSON');
      await expectRefused(
        {
          method: 'POST',
          url: '/api/v1/providers',
          token: t,
          body: 'orgId=x',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
        415,
        'INSITU_UNSUPPORTED_MEDIA_TYPE',
      );
      await expectRefused(
        {
          method: 'POST',
          url: '/api/v1/providers',
          token: t,
          body: 'hello',
          headers: { 'content-type': 'text/plain' },
        },
        415,
        'INSITU_UNSUPPORTED_MEDIA_TYPE',
      );
      const huge = JSON.stringify({ orgId: org.orgId, name: 'big', description: 'x'.repeat(1_100_000) });
      await expectRefused(
        { method: 'POST', url: '/api/v1/providers', token: t, body: huge, headers: json },
        413,
        'INSITU_BODY_TOO_LARGE',
      );
      // A key naming a prototype is an unknown field like any other (see api-edge.test.ts).
      await expectRefused(
        {
          method: 'POST',
          url: '/api/v1/providers',
          token: t,
          body: `{"orgId":"${org.orgId}","name":"p","__proto__":{"admin":true}}`,
          headers: json,
        },
        400,
        'INSITU_VALIDATION',
      );
      await expectRefused(
        {
          method: 'POST',
          url: '/api/v1/providers',
          token: t,
          body: `{"orgId":"${org.orgId}","name":"p","constructor":{"prototype":{"admin":true}}}`,
          headers: json,
        },
        400,
        'INSITU_VALIDATION',
      );
      const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
      await expectRefused(
        { method: 'POST', url: '/api/v1/providers', token: t, body: deep, headers: json },
        400,
        'INSITU_VALIDATION',
      );
      assert.deepEqual(await snapshot(), before);
    });

    it('refuses wrong types, missing and unknown fields, and out-of-range values, naming the field', async () => {
      const before = await snapshot();
      const p = org.tokens.provider;
      const cases: Array<[string, string, unknown, string?]> = [
        ['POST', '/api/v1/providers', { orgId: org.orgId }, p],
        ['POST', '/api/v1/providers', { orgId: org.orgId, name: 42 }, p],
        ['POST', '/api/v1/providers', { orgId: org.orgId, name: 'UPPER case' }, p],
        ['POST', '/api/v1/providers', { orgId: org.orgId, name: 'ok', extra: true }, p],
        ['POST', '/api/v1/providers', { orgId: "org_' OR 1=1 --", name: 'ok' }, p],
        ['POST', '/api/v1/providers', { orgId: org.orgId, name: 'ok', displayName: 'tab\there' }, p],
        ['POST', '/api/v1/tokens', { providerId: org.providerId, ttlSeconds: 1 }, p],
        ['POST', '/api/v1/tokens', { providerId: org.providerId, ttlSeconds: '600' }, p],
        ['POST', '/api/v1/tokens', { providerId: org.providerId, ttlSeconds: 1e12 }, p],
        [
          'POST',
          '/api/v1/signup',
          { org: { name: 'x' }, user: { email: 'not-an-email', name: 'n', password: 'long-enough-pw' } },
        ],
        ['POST', '/api/v1/signup', { org: { name: 'x' }, user: { email: 'a@b.test', name: 'n', password: 'short' } }],
        [
          'POST',
          '/api/v1/signup',
          { org: { name: 'x', admin: true }, user: { email: 'a@b.test', name: 'n', password: 'long-enough-pw' } },
        ],
        ['POST', '/api/v1/sessions', { email: 'a@b.test' }],
        ['POST', '/api/v1/sessions', { email: ['a@b.test'], password: 'x' }],
        ['POST', '/api/v1/agents/enrol', { token: 'x', name: '../../etc' }],
        ['POST', '/api/v1/agents/enrol', { token: '', name: 'a' }],
        [
          'POST',
          `/api/v1/orgs/${org.orgId}/members`,
          { email: 'm@v.test', password: 'long-enough-pw', roles: ['root'] },
          org.tokens.admin,
        ],
        [
          'POST',
          `/api/v1/orgs/${org.orgId}/members`,
          { email: 'm@v.test', password: 'long-enough-pw', roles: [] },
          org.tokens.admin,
        ],
        ['PUT', `/api/v1/orgs/${org.orgId}/members/${org.userIds.user}`, { roles: ['user', 'user'] }, org.tokens.admin],
      ];
      const agent = org.tokens.agent;
      const ds = `/api/v1/providers/${org.providerId}/datasets/bad`;
      const good = datasetBody();
      cases.push(
        ['PUT', ds, { ...good, rowCount: '10' }, agent],
        ['PUT', ds, { ...good, rowCount: 1e300 }, agent],
        ['PUT', ds, { ...good, rowCount: -1 }, agent],
        ['PUT', ds, { ...good, columns: [] }, agent],
        ['PUT', ds, { ...good, columns: 'id' }, agent],
        ['PUT', ds, { ...good, columns: [{ name: 'id', type: 'varchar', nullable: false }] }, agent],
        ['PUT', ds, { ...good, columns: [{ name: 'id', type: 'integer', nullable: 'no' }] }, agent],
        ['PUT', ds, { ...good, columns: [{ name: 'id', type: 'integer', nullable: false, secret: 1 }] }, agent],
        ['PUT', ds, { ...good, tags: ['Has Space'] }, agent],
        ['PUT', ds, { ...good, tags: ['a', 'a'] }, agent],
        ['PUT', ds, { ...good, sourceKind: 'oracle' }, agent],
        ['PUT', ds, { ...good, visibility: 'everyone' }, agent],
        ['PUT', ds, { ...good, syncedAt: 'yesterday' }, agent],
        ['PUT', ds, { ...good, sample: [{ id: 1 }] }, agent],
        [
          'PUT',
          `/api/v1/providers/${org.providerId}/datasets/${encodeURIComponent("x'; DROP TABLE datasets;--")}`,
          good,
          agent,
        ],
        ['PUT', `/api/v1/providers/not-an-id/datasets/ok`, good, agent],
      );
      for (const [method, url, body, token] of cases) {
        await expectRefused({ method, url, body, ...(token ? { token } : {}) }, 400, 'INSITU_VALIDATION');
      }
      const named = await api.call('POST', '/api/v1/providers', {
        token: p,
        body: { orgId: org.orgId, name: 'ok', extra: true },
      });
      assert.match(JSON.parse(named.body).error.message, /body\.extra unknown field/);
      assert.deepEqual(await snapshot(), before);
    });

    it('refuses bad pagination, bad ids in paths and oversize queries; treats search metacharacters as text', async () => {
      const u = org.tokens.user;
      for (const query of [
        'limit=0',
        'limit=101',
        'limit=-1',
        'limit=abc',
        'limit=1.5',
        'q=' + 'x'.repeat(201),
        'tag=NOT%20A%20TAG',
        'column=',
        'q=a&q=b',
        'unknown=1',
      ]) {
        await expectRefused({ method: 'GET', url: `/api/v1/datasets?${query}`, token: u }, 400, 'INSITU_VALIDATION');
      }
      for (const cursor of [
        '!!!',
        Buffer.from('{"o":-5}').toString('base64url'),
        Buffer.from('{"o":1e9}').toString('base64url'),
        'x'.repeat(201),
        Buffer.from('[]').toString('base64url'),
      ]) {
        const response = await api.call('GET', `/api/v1/datasets?cursor=${encodeURIComponent(cursor)}`, { token: u });
        assert.equal(response.statusCode, 400, cursor);
        assert.ok(['INSITU_BAD_CURSOR', 'INSITU_VALIDATION'].includes(JSON.parse(response.body).error.code));
      }
      for (const id of ["org_' OR '1'='1", '..%2F..%2Fetc%2Fpasswd', 'org_01', '%00']) {
        await expectRefused({ method: 'GET', url: `/api/v1/orgs/${id}`, token: u }, 400, 'INSITU_VALIDATION');
      }
      await expectRefused(
        { method: 'GET', url: '/api/v1/orgs/org_0000000000000000000000000a', token: api.adminToken },
        404,
        'INSITU_ORG_NOT_FOUND',
      );
      for (const q of [`' OR 1=1 --`, '"*', 'NEAR(a b)', '%_%', '\\', 'sales" OR "1', '*', '-sales', '(', 'a:b']) {
        const response = await api.call('GET', `/api/v1/datasets?q=${encodeURIComponent(q)}`, { token: u });
        assert.equal(response.statusCode, 200, `q=${q}: ${response.body.slice(0, 200)}`);
      }
      await expectRefused({ method: 'GET', url: '/api/v1/no/such/route', token: u }, 404, 'INSITU_ROUTE_NOT_FOUND');
      await expectRefused({ method: 'DELETE', url: '/api/v1/datasets', token: u }, 405, 'INSITU_METHOD_NOT_ALLOWED');
    });

    it('refuses garbage credentials without touching anything', async () => {
      for (const authorization of [
        'Bearer',
        'Bearer ',
        'Basic dXNlcjpwYXNz',
        `Bearer ${'x'.repeat(10_000)}`,
        'Bearer isu_ses_forged',
        'Bearer isu_agt_forged',
        "Bearer ' OR 1=1 --",
      ]) {
        await expectRefused(
          { method: 'GET', url: '/api/v1/users/me', headers: { authorization } },
          401,
          'INSITU_UNAUTHENTICATED',
        );
      }
    });

    it('survives random bytes sent to every endpoint that takes a body: 4xx, never 5xx', async () => {
      const before = await snapshot();
      const targets = [
        ['POST', '/api/v1/signup'],
        ['POST', '/api/v1/sessions'],
        ['POST', '/api/v1/orgs'],
        ['POST', '/api/v1/providers'],
        ['POST', '/api/v1/tokens'],
        ['POST', '/api/v1/agents/enrol'],
        ['PATCH', '/api/v1/users/me'],
        ['PUT', `/api/v1/providers/${org.providerId}/datasets/fuzz`],
        ['POST', `/api/v1/orgs/${org.orgId}/members`],
        ['PATCH', `/api/v1/providers/${org.providerId}`],
      ] as const;
      for (const [method, url] of targets) {
        for (let i = 0; i < 25; i++) {
          const payload =
            i % 2 === 0
              ? randomBytes(1 + ((i * 37) % 400)).toString('latin1')
              : JSON.stringify({ [randomBytes(4).toString('hex')]: randomBytes(8).toString('base64') });
          for (const token of [org.tokens.admin, org.tokens.agent]) {
            const response = await api.call(method, url, {
              token,
              body: payload,
              headers: { 'content-type': 'application/json' },
            });
            assert.ok(
              response.statusCode >= 400 && response.statusCode < 500,
              `${method} ${url}: ${response.statusCode} ${response.body.slice(0, 200)}`,
            );
          }
        }
      }
      assert.deepEqual(await snapshot(), before);
      expectStatus(await api.call('GET', '/healthz'), 200);
      expectStatus(await api.call('GET', '/readyz'), 200);
    });
  });
}
