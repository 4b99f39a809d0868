import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '@insitu/core';
import type { Kysely } from 'kysely';
import { databaseTargets } from '@insitu/test-helpers';
import { AppRepository, openStore, type Store } from '../src/index.js';

/*
 * Migration 003 on a platform that ran before it: versions approved under the old
 * "provider by name, else by id" resolution keep exactly what each provider approved, and
 * names with the shape of an id (which only an impersonation has) are renamed.
 */
for (const target of databaseTargets()) {
  describe(`migration 003 (resolved datasets, id-shaped names) on ${target.dialect}`, () => {
    let store: Store;
    let drop: () => Promise<void>;
    const ids = {
      victimOrg: '',
      attackerOrg: '',
      victim: '',
      attacker: '',
      legacyOrg: '',
      legacy: '',
      attack: '',
      mixed: '',
      orphan: '',
    };

    before(async () => {
      const db = await target.create();
      drop = () => db.drop();
      store = await openStore(db.config, { migrate: false });
      await store.migrate({ to: '002-services' });
      const victimOrg = await store.orgs.create({ name: 'shop', displayName: 'Shop', status: 'active' });
      const victim = await store.providers.create({
        orgId: victimOrg.id,
        name: 'shop-data',
        displayName: 'Shop data',
        description: '',
      });
      // The attack of issue 16, as a platform before the rule could hold it: the attacker's
      // organisation and provider are named with the victim's ids.
      const attackerOrg = await store.orgs.create({ name: victimOrg.id, displayName: 'Evil', status: 'active' });
      const attacker = await store.providers.create({
        orgId: attackerOrg.id,
        name: victim.id,
        displayName: 'Evil data',
        description: '',
      });
      const legacyOrg = await store.orgs.create({ name: 'old_style', displayName: 'Old', status: 'active' });
      const legacy = await store.providers.create({
        orgId: legacyOrg.id,
        name: 'old_style_data',
        displayName: 'Old data',
        description: '',
      });
      const user = await store.users.create({ email: 'dev@evil.test', name: 'Dev', passwordHash: 'x' });
      const app = await store.apps.create({
        orgId: attackerOrg.id,
        name: 'steal',
        description: '',
        createdBy: user.id,
      });
      // Old code resolved "shop-data" to the victim and victim.id (by name first) to the
      // attacker: one approval each. The victim approved reading "weather" only.
      const attack = await legacyVersion(
        store,
        app.id,
        '1.0.0',
        [
          { provider: 'shop-data', dataset: 'weather' },
          { provider: victim.id, dataset: 'sales' },
        ],
        [victim.id, attacker.id],
      );
      const mixed = await legacyVersion(
        store,
        app.id,
        '2.0.0',
        [
          { provider: 'old_style_data', dataset: 'rivers' },
          { provider: victim.id, dataset: 'weather' },
        ],
        [legacy.id, attacker.id],
      );
      // An entry whose provider got no approval (cannot happen, but must not widen anything).
      const orphan = await legacyVersion(
        store,
        app.id,
        '3.0.0',
        [{ provider: 'shop-data', dataset: 'sales' }],
        [legacy.id],
      );
      Object.assign(ids, {
        victimOrg: victimOrg.id,
        attackerOrg: attackerOrg.id,
        victim: victim.id,
        attacker: attacker.id,
        legacyOrg: legacyOrg.id,
        legacy: legacy.id,
        attack,
        mixed,
        orphan,
      });
      // The migrations after 002, in order (later ones follow; this test is about 003).
      assert.deepEqual((await store.migrate()).slice(0, 2), ['003-resolved-datasets', '004-app-logs']);
    });

    after(async () => {
      await store?.close();
      await drop?.();
    });

    it('gives each old version the datasets its submission resolved, kept only where that provider holds an approval', async () => {
      const datasetsOf = async (id: string) =>
        AppRepository.datasetsOf((await store.apps.getVersion(id)) ?? assert.fail(`no version ${id}`));
      // The victim's agent is told "weather" only: "sales" was approved by the attacker's provider.
      assert.deepEqual(await datasetsOf(ids.attack), [
        { providerId: ids.victim, dataset: 'weather' },
        { providerId: ids.attacker, dataset: 'sales' },
      ]);
      assert.deepEqual(await datasetsOf(ids.mixed), [
        { providerId: ids.legacy, dataset: 'rivers' },
        { providerId: ids.attacker, dataset: 'weather' },
      ]);
      assert.deepEqual(await datasetsOf(ids.orphan), []);
    });

    it('renames organisations and providers whose names have the shape of an id, tells their organisation, and keeps other legacy names', async () => {
      const attacker = await store.providers.get(ids.attacker);
      assert.equal(attacker?.name, `renamed-${ids.attacker.slice(4)}`);
      assert.equal((await store.orgs.get(ids.attackerOrg))?.name, `renamed-${ids.attackerOrg.slice(4)}`);
      assert.equal(
        await store.providers.getByName(ids.victim),
        undefined,
        'no provider is named like the victim any more',
      );
      assert.equal((await store.providers.get(ids.victim))?.name, 'shop-data');
      assert.equal((await store.providers.getByName('old_style_data'))?.id, ids.legacy);
      assert.equal((await store.orgs.getByName('old_style'))?.id, ids.legacyOrg);
      const events = await store.events.list({ orgIds: [ids.attackerOrg], limit: 10 });
      assert.deepEqual(events.map((e) => [e.kind, e.subject]).sort(), [
        ['org.renamed', ids.attackerOrg],
        ['provider.renamed', ids.attacker],
      ]);
      assert.match(events.find((e) => e.kind === 'provider.renamed')?.message ?? '', /may not have the shape of an id/);
    });

    it('new versions record their resolved datasets and ask those providers, once each', async () => {
      const app = await store.apps.create({ orgId: ids.victimOrg, name: 'fresh', description: '', createdBy: 'usr_x' });
      const { version, approvals } = await store.transaction((tx) =>
        tx.apps.createVersion({
          appId: app.id,
          version: '1.0.0',
          major: 1,
          digest: 'd'.repeat(64),
          size: 1,
          manifest: {},
          files: [],
          submittedBy: 'usr_x',
          datasets: [
            { providerId: ids.victim, dataset: 'a' },
            { providerId: ids.victim, dataset: 'b' },
            { providerId: ids.legacy, dataset: 'c' },
          ],
        }),
      );
      assert.deepEqual(approvals.map((a) => a.provider_id).sort(), [ids.victim, ids.legacy].sort());
      assert.deepEqual(AppRepository.datasetsOf(version), [
        { providerId: ids.victim, dataset: 'a' },
        { providerId: ids.victim, dataset: 'b' },
        { providerId: ids.legacy, dataset: 'c' },
      ]);
    });
  });
}

/** A version as the platform before migration 003 wrote it: manifest and approvals, no resolved list. */
async function legacyVersion(
  store: Store,
  appId: string,
  version: string,
  datasets: Array<{ provider: string; dataset: string }>,
  approvers: string[],
): Promise<string> {
  const id = newId('ver');
  const now = Date.now();
  const manifest = {
    name: 'steal',
    version,
    runtime: 'node',
    entry: 'index.js',
    datasets,
    endpoints: [{ method: 'GET', path: '/' }],
    replicas: 1,
  };
  const db = store.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
  await db
    .insertInto('app_versions')
    .values({
      id,
      app_id: appId,
      version,
      major: Number(version.split('.')[0]),
      digest: 'a'.repeat(64),
      size: 1,
      manifest: JSON.stringify(manifest),
      files: '[]',
      state: 'approved',
      submitted_by: 'usr_x',
      created_at: now,
    })
    .execute();
  for (const providerId of approvers) {
    await db
      .insertInto('approvals')
      .values({
        id: newId('apr'),
        version_id: id,
        provider_id: providerId,
        digest: 'a'.repeat(64),
        state: 'approved',
        reason: '',
        decided_by: 'usr_x',
        decided_at: now,
        created_at: now,
      })
      .execute();
  }
  return id;
}
