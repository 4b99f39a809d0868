import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hashSecret, newId } from '@insitu/core';
import { databaseTargets } from '@insitu/test-helpers';
import type { Store } from '../src/index.js';
import { freshStore } from './fixtures.js';

for (const target of databaseTargets()) {
  describe(`repositories on ${target.dialect}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let clock = Date.parse('2026-01-01T00:00:00Z');

    before(async () => {
      ({ store, dispose } = await freshStore(target, () => clock));
    });
    after(async () => dispose());

    it('migrates idempotently', async () => {
      assert.deepEqual(await store.migrate(), []);
      await store.ping();
    });

    it('keeps organisation names unique and finds the platform organisation', async () => {
      const org = await store.orgs.create({ name: 'acme', displayName: 'Acme', status: 'pending' });
      await assert.rejects(
        store.orgs.create({ name: 'acme', displayName: 'Other', status: 'active' }),
        (e: unknown) => {
          assert.match(String((e as Error).message), /UNIQUE|Duplicate/i);
          return true;
        },
      );
      assert.equal((await store.orgs.getByName('acme'))?.id, org.id);
      assert.equal(await store.orgs.platform(), undefined);
      const platform = await store.orgs.create({
        name: 'platform',
        displayName: 'P',
        status: 'active',
        kind: 'platform',
      });
      assert.equal((await store.orgs.platform())?.id, platform.id);
      assert.equal(await store.orgs.setStatus(org.id, 'active'), true);
      assert.equal((await store.orgs.get(org.id))?.status, 'active');
      assert.deepEqual(
        (await store.orgs.list({ ids: [org.id], limit: 10, offset: 0 })).map((o) => o.id),
        [org.id],
      );
      assert.deepEqual(await store.orgs.list({ ids: [], limit: 10, offset: 0 }), []);
    });

    it('stores users with lower-cased emails and tracks roles per organisation', async () => {
      const org = await store.orgs.create({ name: 'roles-org', displayName: 'R', status: 'active' });
      const user = await store.users.create({ email: 'Ann@Example.COM', name: 'Ann', passwordHash: 'x' });
      assert.equal(user.email, 'ann@example.com');
      assert.equal((await store.users.getByEmail('ANN@example.com'))?.id, user.id);
      await store.users.addRole(org.id, user.id, 'developer');
      await store.users.addRole(org.id, user.id, 'developer');
      await store.users.addRole(org.id, user.id, 'user');
      assert.deepEqual(
        (await store.users.memberships(user.id)).map((m) => m.role),
        ['developer', 'user'],
      );
      await store.users.setRoles(org.id, user.id, ['admin']);
      const members = await store.users.members(org.id, { limit: 10, offset: 0 });
      assert.deepEqual(
        members.map((m) => [m.user.id, m.roles]),
        [[user.id, ['admin']]],
      );
      assert.equal(await store.users.countWithRole(org.id, 'admin'), 1);
      assert.equal(await store.users.removeMembership(org.id, user.id), true);
      assert.deepEqual(await store.users.memberships(user.id), []);
    });

    it('finds only live sessions', async () => {
      const user = await store.users.create({ email: 'sessions@example.com', name: 'S', passwordHash: 'x' });
      const a = await store.sessions.create({ userId: user.id, tokenHash: hashSecret('a'), ttlMs: 1000 });
      const b = await store.sessions.create({ userId: user.id, tokenHash: hashSecret('b'), ttlMs: 60_000 });
      assert.equal((await store.sessions.findLive(hashSecret('a')))?.id, a.id);
      clock += 2000;
      assert.equal(await store.sessions.findLive(hashSecret('a')), undefined, 'expired');
      assert.equal((await store.sessions.findLive(hashSecret('b')))?.id, b.id);
      assert.equal(await store.sessions.revokeAllOfUser(user.id, b.id), 1, 'revokes every session but the kept one');
      assert.ok(await store.sessions.findLive(hashSecret('b')));
      assert.equal(await store.sessions.revoke(b.id), true);
      assert.equal(await store.sessions.findLive(hashSecret('b')), undefined, 'revoked');
      assert.equal(await store.sessions.findLive(hashSecret('never-issued')), undefined);
    });

    it('lets an enrolment token be used exactly once, even by concurrent exchanges', async () => {
      const org = await store.orgs.create({ name: 'tokens-org', displayName: 'T', status: 'active' });
      const provider = await store.providers.create({
        orgId: org.id,
        name: 'tokens-provider',
        displayName: 'T',
        description: '',
      });
      await store.providers.createToken({
        providerId: provider.id,
        tokenHash: hashSecret('tok'),
        note: '',
        createdBy: 'usr',
        ttlMs: 60_000,
      });
      const attempts = await Promise.all(
        Array.from({ length: 8 }, () =>
          store.transaction(async (tx) => tx.providers.consumeToken(hashSecret('tok'), newId('agt'))),
        ),
      );
      assert.equal(attempts.filter(Boolean).length, 1);
      assert.equal(await store.providers.consumeToken(hashSecret('tok'), newId('agt')), undefined, 'used');

      const expiring = await store.providers.createToken({
        providerId: provider.id,
        tokenHash: hashSecret('short'),
        note: '',
        createdBy: 'usr',
        ttlMs: 10,
      });
      clock += 100;
      assert.equal(await store.providers.consumeToken(hashSecret('short'), newId('agt')), undefined, 'expired');
      assert.equal(await store.providers.revokeToken(expiring.id), true);
      await store.providers.createToken({
        providerId: provider.id,
        tokenHash: hashSecret('revoked'),
        note: '',
        createdBy: 'usr',
        ttlMs: 60_000,
      });
      const [, , revoked] = await store.providers.listTokens(provider.id, { limit: 10, offset: 0 });
      assert.ok(revoked);
      await store.providers.revokeToken(revoked.id);
      assert.equal(await store.providers.consumeToken(hashSecret('revoked'), newId('agt')), undefined, 'revoked');
    });

    it('finds agents by credential hash until revoked', async () => {
      const org = await store.orgs.create({ name: 'agents-org', displayName: 'A', status: 'active' });
      const provider = await store.providers.create({
        orgId: org.id,
        name: 'agents-provider',
        displayName: 'A',
        description: '',
      });
      const agent = await store.providers.createAgent({
        id: newId('agt'),
        providerId: provider.id,
        name: 'a1',
        credentialHash: hashSecret('cred'),
        hostname: 'h',
        version: '1',
      });
      assert.equal((await store.providers.findLiveAgent(hashSecret('cred')))?.id, agent.id);
      assert.deepEqual(
        (await store.providers.listAgents({ orgIds: [org.id], limit: 10, offset: 0 })).map((a) => a.id),
        [agent.id],
      );
      assert.deepEqual(await store.providers.listAgents({ orgIds: [], limit: 10, offset: 0 }), []);
      assert.equal(await store.providers.revokeAgent(agent.id), true);
      assert.equal(await store.providers.findLiveAgent(hashSecret('cred')), undefined);
      assert.equal(await store.providers.revokeAgent(agent.id), false);
    });

    it('rolls back a failed transaction completely', async () => {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.orgs.create({ name: 'rolled-back', displayName: 'R', status: 'active' });
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(await store.orgs.getByName('rolled-back'), undefined);
    });
  });
}
