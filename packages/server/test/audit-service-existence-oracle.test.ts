import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, expectStatus, makeOrg, startApi } from './fixtures.js';

/*
 * Issue 16, item 11: `GET /api/v1/audit?service=<another organisation's restricted
 * service>` answered 200 while an unknown name answered 404, which told an outsider which
 * restricted names exist. Both now answer the same 404 with the same code and message.
 */
for (const target of databaseTargets()) {
  describe(`audit and usage filters reveal no restricted service on ${target.dialect}`, () => {
    let api: Api;
    let owner: OrgWorld;
    let outsider: OrgWorld;
    let restrictedId = '';

    /** The error body with the reference written by the caller replaced, so two answers compare as equal. */
    const shape = (body: string, ref: string) => {
      const { error } = JSON.parse(body) as { error: { code: string; message: string; requestId: string } };
      assert.match(error.requestId, /^req_/);
      return {
        keys: Object.keys(JSON.parse(body) as object),
        code: error.code,
        message: error.message.replace(ref, '<ref>'),
        errorKeys: Object.keys(error).sort(),
      };
    };

    before(async () => {
      api = await startApi(target);
      owner = await makeOrg(api, 'owner');
      outsider = await makeOrg(api, 'outsider');
      const appId = expectStatus(
        await api.call('POST', '/api/v1/apps', {
          token: owner.tokens.developer,
          body: { orgId: owner.orgId, name: 'secret-app' },
        }),
        201,
      ).id;
      restrictedId = expectStatus(
        await api.call('POST', '/api/v1/services', {
          token: owner.tokens.developer,
          body: { name: 'secret-sauce', appId, access: 'restricted' },
        }),
        201,
      ).id;
      expectStatus(
        await api.call('POST', '/api/v1/services', {
          token: owner.tokens.developer,
          body: { name: 'open-data', appId, access: 'public' },
        }),
        201,
      );
    });
    after(async () => api?.close());

    for (const path of ['/api/v1/audit', '/api/v1/usage']) {
      it(`${path}?service= answers another organisation's restricted service exactly like an unknown one (by name and by id)`, async () => {
        for (const [hidden, unknown] of [
          ['secret-sauce', 'no-such-sauce'],
          [restrictedId, 'svc_00000000000000000000000000'],
        ] as const) {
          const a = await api.call('GET', `${path}?service=${hidden}`, { token: outsider.tokens.developer });
          const b = await api.call('GET', `${path}?service=${unknown}`, { token: outsider.tokens.developer });
          assert.equal(a.statusCode, 404, a.body);
          assert.equal(b.statusCode, 404, b.body);
          assert.deepEqual(shape(a.body, hidden), shape(b.body, unknown));
          assert.equal(shape(a.body, hidden).code, 'INSITU_SERVICE_NOT_FOUND');
        }
      });
    }

    it('the owner, an organisation granted the service and the platform admin still filter by it', async () => {
      expectStatus(await api.call('GET', '/api/v1/audit?service=secret-sauce', { token: owner.tokens.user }), 200);
      expectStatus(await api.call('GET', '/api/v1/usage?service=secret-sauce', { token: owner.tokens.user }), 200);
      expectStatus(await api.call('GET', '/api/v1/audit?service=secret-sauce', { token: api.adminToken }), 200);
      expectStatus(
        await api.call('POST', `/api/v1/services/${restrictedId}/grants`, {
          token: owner.tokens.developer,
          body: { orgId: outsider.orgId },
        }),
        204,
      );
      expectStatus(
        await api.call('GET', '/api/v1/audit?service=secret-sauce', { token: outsider.tokens.developer }),
        200,
      );
      // Usage stays the owner's: a granted caller reads its own through ?key=.
      assert.equal(
        (await api.call('GET', '/api/v1/usage?service=secret-sauce', { token: outsider.tokens.developer })).statusCode,
        404,
      );
      expectStatus(
        await api.call('DELETE', `/api/v1/services/${restrictedId}/grants/${outsider.orgId}`, {
          token: owner.tokens.developer,
        }),
        204,
      );
      assert.equal(
        (await api.call('GET', '/api/v1/audit?service=secret-sauce', { token: outsider.tokens.developer })).statusCode,
        404,
        'the grant withdrawn, the name is hidden again',
      );
    });

    it('the gateway answers a key of another organisation for a restricted service exactly like an unknown name', async () => {
      const key = expectStatus(
        await api.call('POST', '/api/v1/keys', {
          token: outsider.tokens.user,
          body: { orgId: outsider.orgId, name: 'prober', services: ['open-data'] },
        }),
        201,
      ).key as string;
      const call = (name: string) =>
        api.app.inject({ method: 'GET', url: `/s/${name}/anything`, headers: { authorization: `Bearer ${key}` } });
      const a = await call('secret-sauce');
      const b = await call('no-such-sauce');
      assert.equal(a.statusCode, 404, a.body);
      assert.equal(b.statusCode, 404, b.body);
      assert.deepEqual(shape(a.body, 'secret-sauce'), shape(b.body, 'no-such-sauce'));
      // A key that names the service knows it: there the refusal says why.
      const scoped = await api.call('POST', '/api/v1/keys', {
        token: outsider.tokens.user,
        body: { orgId: outsider.orgId, name: 'named', services: ['secret-sauce'] },
      });
      assert.equal(scoped.statusCode, 404, 'a restricted service cannot even be named in a key by an outsider');
    });

    it('a public service of another organisation is visible (its callers read their own records of it)', async () => {
      expectStatus(await api.call('GET', '/api/v1/audit?service=open-data', { token: outsider.tokens.user }), 200);
    });
  });
}
