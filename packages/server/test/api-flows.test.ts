import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecret, hashSecret } from '@insitu/core';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, TEST_PASSWORD, datasetBody, expectStatus, makeOrg, startApi } from './fixtures.js';

for (const target of databaseTargets()) {
  describe(`API flows on ${target.dialect}`, () => {
    let api: Api;

    before(async () => {
      api = await startApi(target, { auth: { passwordCost: 10, signup: 'approval' } });
    });
    after(async () => api.close());

    it('signs up a pending organisation that can act only after a platform admin approves it', async () => {
      const signup = expectStatus(
        await api.call('POST', '/api/v1/signup', {
          body: {
            org: { name: 'initech' },
            user: { email: 'peter@initech.test', name: 'Peter', password: TEST_PASSWORD },
          },
        }),
        201,
      );
      assert.equal(signup.org.status, 'pending');
      const token = signup.session.token as string;
      const me = expectStatus(await api.call('GET', '/api/v1/users/me', { token }), 200);
      assert.deepEqual(me.memberships, [
        { orgId: signup.org.id, orgName: 'initech', orgStatus: 'pending', roles: ['admin'] },
      ]);
      const refused = await api.call('POST', '/api/v1/providers', {
        token,
        body: { orgId: signup.org.id, name: 'initech-data' },
      });
      assert.equal(refused.statusCode, 403);
      assert.equal(JSON.parse(refused.body).error.code, 'INSITU_ORG_NOT_ACTIVE');
      const pending = expectStatus(
        await api.call('GET', '/api/v1/orgs?status=pending', { token: api.adminToken }),
        200,
      );
      assert.deepEqual(
        pending.items.map((o: { name: string }) => o.name),
        ['initech'],
      );
      expectStatus(await api.call('POST', `/api/v1/orgs/${signup.org.id}/approve`, { token: api.adminToken }), 200);
      expectStatus(
        await api.call('POST', '/api/v1/providers', { token, body: { orgId: signup.org.id, name: 'initech-data' } }),
        201,
      );
      const duplicate = await api.call('POST', '/api/v1/signup', {
        body: { org: { name: 'initech' }, user: { email: 'x@y.test', name: 'X', password: TEST_PASSWORD } },
      });
      assert.equal(duplicate.statusCode, 409);
      assert.equal(JSON.parse(duplicate.body).error.code, 'INSITU_CONFLICT');
      assert.equal(await api.store.users.getByEmail('x@y.test'), undefined, 'the failed sign-up left no user behind');
    });

    it('signs in and out; wrong email and wrong password fail alike', async () => {
      const session = expectStatus(
        await api.call('POST', '/api/v1/sessions', { body: { email: 'root@platform.test', password: TEST_PASSWORD } }),
        201,
      );
      for (const body of [
        { email: 'root@platform.test', password: 'wrong-password' },
        { email: 'nobody@platform.test', password: TEST_PASSWORD },
      ]) {
        const response = await api.call('POST', '/api/v1/sessions', { body });
        assert.equal(response.statusCode, 401);
        assert.equal(JSON.parse(response.body).error.code, 'INSITU_BAD_CREDENTIALS');
        assert.equal(JSON.parse(response.body).error.message, 'wrong email or password');
      }
      expectStatus(await api.call('DELETE', '/api/v1/sessions/current', { token: session.token }), 204);
      const after = await api.call('GET', '/api/v1/users/me', { token: session.token });
      assert.equal(after.statusCode, 401);
      assert.equal(after.headers['www-authenticate'], 'Bearer');
    });

    it('ends other sessions when the password changes and requires the current password', async () => {
      const acme = await makeOrg(api, 'pwchange');
      const second = expectStatus(
        await api.call('POST', '/api/v1/sessions', { body: { email: 'user@pwchange.test', password: TEST_PASSWORD } }),
        201,
      );
      const wrong = await api.call('PATCH', '/api/v1/users/me', {
        token: acme.tokens.user,
        body: { password: 'a-new-password-1', currentPassword: 'nope' },
      });
      assert.equal(JSON.parse(wrong.body).error.code, 'INSITU_BAD_CREDENTIALS');
      expectStatus(
        await api.call('PATCH', '/api/v1/users/me', {
          token: acme.tokens.user,
          body: { password: 'a-new-password-1', currentPassword: TEST_PASSWORD },
        }),
        200,
      );
      expectStatus(await api.call('GET', '/api/v1/users/me', { token: acme.tokens.user }), 200);
      assert.equal(
        (await api.call('GET', '/api/v1/users/me', { token: second.token })).statusCode,
        401,
        'the other session ended',
      );
      expectStatus(
        await api.call('POST', '/api/v1/sessions', {
          body: { email: 'user@pwchange.test', password: 'a-new-password-1' },
        }),
        201,
      );
    });

    it('never lets an organisation lose its last admin', async () => {
      const org = await makeOrg(api, 'lastadmin');
      const demote = await api.call('PUT', `/api/v1/orgs/${org.orgId}/members/${org.userIds.admin}`, {
        token: org.tokens.admin,
        body: { roles: ['user'] },
      });
      assert.equal(JSON.parse(demote.body).error.code, 'INSITU_LAST_ADMIN');
      const remove = await api.call('DELETE', `/api/v1/orgs/${org.orgId}/members/${org.userIds.admin}`, {
        token: org.tokens.admin,
      });
      assert.equal(JSON.parse(remove.body).error.code, 'INSITU_LAST_ADMIN');
      expectStatus(
        await api.call('PUT', `/api/v1/orgs/${org.orgId}/members/${org.userIds.user}`, {
          token: org.tokens.admin,
          body: { roles: ['admin', 'user'] },
        }),
        200,
      );
      expectStatus(
        await api.call('PUT', `/api/v1/orgs/${org.orgId}/members/${org.userIds.admin}`, {
          token: org.tokens.admin,
          body: { roles: ['developer'] },
        }),
        200,
      );
    });

    it('exchanges an enrolment token once for a credential stored only as a hash; revoking the agent locks it out', async () => {
      const org = await makeOrg(api, 'enrol');
      const token = expectStatus(
        await api.call('POST', '/api/v1/tokens', {
          token: org.tokens.provider,
          body: { providerId: org.providerId, ttlSeconds: 60, note: 'rack 4' },
        }),
        201,
      );
      assert.match(token.token, /^isu_enr_/);
      const listed = expectStatus(
        await api.call('GET', `/api/v1/tokens?provider=${org.providerId}`, { token: org.tokens.provider }),
        200,
      );
      assert.ok(
        listed.items.every((t: Record<string, unknown>) => !('token' in t)),
        'secrets are never listed',
      );
      const enrolled = expectStatus(
        await api.call('POST', '/api/v1/agents/enrol', {
          body: { token: token.token, name: 'edge-1', hostname: 'rack4' },
        }),
        201,
      );
      const again = await api.call('POST', '/api/v1/agents/enrol', { body: { token: token.token, name: 'edge-2' } });
      assert.equal(again.statusCode, 401);
      assert.equal(JSON.parse(again.body).error.code, 'INSITU_TOKEN_INVALID');
      const row = await api.store.providers.getAgent(enrolled.agent.id);
      assert.ok(
        row &&
          row.credential_hash !== enrolled.credential &&
          !row.credential_hash.includes(enrolled.credential.slice(8)),
      );
      expectStatus(await api.call('GET', '/api/v1/agents/self', { token: enrolled.credential }), 200);
      const states = expectStatus(
        await api.call('GET', `/api/v1/tokens?provider=${org.providerId}`, { token: org.tokens.provider }),
        200,
      );
      assert.ok(
        states.items.some(
          (t: { id: string; state: string; agentId?: string }) =>
            t.id === token.id && t.state === 'used' && t.agentId === enrolled.agent.id,
        ),
      );
      expectStatus(
        await api.call('DELETE', `/api/v1/agents/${enrolled.agent.id}`, { token: org.tokens.provider }),
        204,
      );
      assert.equal((await api.call('GET', '/api/v1/agents/self', { token: enrolled.credential })).statusCode, 401);
      const revokedToken = expectStatus(
        await api.call('POST', '/api/v1/tokens', { token: org.tokens.provider, body: { providerId: org.providerId } }),
        201,
      );
      expectStatus(await api.call('DELETE', `/api/v1/tokens/${revokedToken.id}`, { token: org.tokens.provider }), 204);
      assert.equal(
        (await api.call('POST', '/api/v1/agents/enrol', { body: { token: revokedToken.token, name: 'late' } }))
          .statusCode,
        401,
      );
    });

    it('lets an agent write only its own provider catalog, and search finds what it wrote', async () => {
      const a = await makeOrg(api, 'cat-a');
      const b = await makeOrg(api, 'cat-b');
      const foreign = await api.call('PUT', `/api/v1/providers/${b.providerId}/datasets/stolen`, {
        token: a.tokens.agent,
        body: datasetBody(),
      });
      assert.equal(foreign.statusCode, 403);
      const created = await api.call('PUT', `/api/v1/providers/${a.providerId}/datasets/sensor_readings`, {
        token: a.tokens.agent,
        body: datasetBody({
          description: 'Turbine vibration',
          tags: ['iot'],
          columns: [{ name: 'rpm', type: 'integer', nullable: false }],
        }),
      });
      assert.equal(created.statusCode, 201);
      const replaced = await api.call('PUT', `/api/v1/providers/${a.providerId}/datasets/sensor_readings`, {
        token: a.tokens.agent,
        body: datasetBody({
          description: 'Turbine vibration and heat',
          tags: ['iot'],
          columns: [{ name: 'rpm', type: 'integer', nullable: false }],
        }),
      });
      assert.equal(replaced.statusCode, 200);
      assert.equal(JSON.parse(replaced.body).id, JSON.parse(created.body).id);
      const found = expectStatus(
        await api.call('GET', '/api/v1/datasets?q=turbine%20heat&tag=iot&column=RPM&provider=cat-a-data', {
          token: b.tokens.user,
        }),
        200,
      );
      assert.deepEqual(
        found.items.map((d: { name: string }) => d.name),
        ['sensor_readings'],
      );
      const byId = expectStatus(
        await api.call('GET', `/api/v1/datasets?provider=${a.providerId}`, { token: b.tokens.user }),
        200,
      );
      assert.deepEqual(byId.items.map((d: { name: string }) => d.name).sort(), ['public_sales', 'sensor_readings']);
      const none = expectStatus(
        await api.call('GET', '/api/v1/datasets?provider=no-such-provider', { token: b.tokens.user }),
        200,
      );
      assert.deepEqual(none.items, []);
    });

    it('pages with opaque cursors bound to their query', async () => {
      const org = await makeOrg(api, 'paging');
      for (let i = 0; i < 5; i++) {
        expectStatus(
          await api.call('PUT', `/api/v1/providers/${org.providerId}/datasets/page_${i}`, {
            token: org.tokens.agent,
            body: datasetBody({ tags: ['paging'] }),
          }),
          201,
        );
      }
      const seen: string[] = [];
      let url = '/api/v1/datasets?tag=paging&limit=2';
      for (;;) {
        const page = expectStatus(await api.call('GET', url, { token: org.tokens.user }), 200);
        seen.push(...page.items.map((d: { name: string }) => d.name));
        if (!page.nextCursor) break;
        url = `/api/v1/datasets?tag=paging&limit=2&cursor=${page.nextCursor}`;
      }
      assert.deepEqual(seen, ['page_0', 'page_1', 'page_2', 'page_3', 'page_4']);
      const first = expectStatus(
        await api.call('GET', '/api/v1/datasets?tag=paging&limit=2', { token: org.tokens.user }),
        200,
      );
      const misused = await api.call('GET', `/api/v1/datasets?tag=retail&limit=2&cursor=${first.nextCursor}`, {
        token: org.tokens.user,
      });
      assert.equal(JSON.parse(misused.body).error.code, 'INSITU_BAD_CURSOR');
    });

    it('answers readiness and exposes request metrics to admins', async () => {
      expectStatus(await api.call('GET', '/readyz'), 200);
      const metrics = await api.call('GET', '/metrics', { token: api.adminToken });
      assert.match(
        metrics.body,
        /insitu_http_requests_total\{method="POST",route="\/api\/v1\/sessions",status="201"\} \d+/,
      );
      assert.match(metrics.body, /insitu_errors_total\{code="INSITU_BAD_CREDENTIALS"\} \d+/);
      assert.match(metrics.body, /insitu_process_resident_memory_bytes/);
    });

    it('serves an OpenAPI document generated from the validating schemas', async () => {
      const doc = expectStatus(await api.call('GET', '/api/v1/openapi.json'), 200);
      assert.equal(doc.openapi, '3.1.0');
      const signup = doc.paths['/api/v1/signup'].post;
      assert.equal(
        signup.requestBody.content['application/json'].schema.properties.user.properties.password.minLength,
        10,
      );
      assert.equal(signup.requestBody.content['application/json'].schema.additionalProperties, false);
      for (const path of [
        '/api/v1/datasets',
        '/api/v1/orgs',
        '/api/v1/providers',
        '/api/v1/tokens',
        '/api/v1/agents',
        '/api/v1/users',
        '/api/v1/cluster',
        '/healthz',
        '/readyz',
      ]) {
        assert.ok(doc.paths[path], `${path} is documented`);
      }
    });

    it('refuses an expired session with 401', async () => {
      await makeOrg(api, 'expiry');
      const member = await api.store.users.getByEmail('user@expiry.test');
      assert.ok(member);
      const token = generateSecret('ses');
      await api.store.sessions.create({ userId: member.id, tokenHash: hashSecret(token), ttlMs: -1 });
      const response = await api.call('GET', '/api/v1/users/me', { token });
      assert.equal(response.statusCode, 401);
      assert.equal(JSON.parse(response.body).error.code, 'INSITU_UNAUTHENTICATED');
    });
  });
}
