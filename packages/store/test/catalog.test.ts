import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import type { CatalogViewer, DatasetSearch, Store } from '../src/index.js';
import { datasetInput, freshStore } from './fixtures.js';

const everyone: CatalogViewer = { all: false, orgIds: [] };

for (const target of databaseTargets()) {
  describe(`catalog on ${target.dialect}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let acme = '';
    let globex = '';
    let acmeOrg = '';

    const names = async (search: Partial<DatasetSearch>) =>
      (await store.datasets.search({ viewer: everyone, limit: 50, offset: 0, ...search })).items.map((d) => d.name);

    before(async () => {
      ({ store, dispose } = await freshStore(target));
      const a = await store.orgs.create({ name: 'acme', displayName: 'Acme', status: 'active' });
      const g = await store.orgs.create({ name: 'globex', displayName: 'Globex', status: 'active' });
      acmeOrg = a.id;
      acme = (await store.providers.create({ orgId: a.id, name: 'acme-data', displayName: 'Acme', description: '' }))
        .id;
      globex = (
        await store.providers.create({ orgId: g.id, name: 'globex-data', displayName: 'Globex', description: '' })
      ).id;
      await store.datasets.upsert(
        acme,
        'customer_orders',
        datasetInput({
          description: 'Orders placed by customers in the shop',
          tags: ['retail', 'eu'],
          columns: [
            { name: 'order_id', type: 'integer', nullable: false },
            { name: 'customerName', type: 'text', nullable: true, description: 'Full name of the buyer' },
            { name: 'amount', type: 'decimal', nullable: false },
          ],
          rowCount: 1200,
        }),
      );
      await store.datasets.upsert(
        acme,
        'weather_daily',
        datasetInput({
          description: 'Daily weather: temperature and rain per city; the orders of the day are elsewhere',
          tags: ['weather', 'eu'],
          columns: [
            { name: 'city', type: 'text', nullable: false },
            { name: 'temp_c', type: 'number', nullable: true },
          ],
        }),
      );
      await store.datasets.upsert(
        acme,
        'internal_payroll',
        datasetInput({
          description: 'Salaries, private to Acme',
          tags: ['hr'],
          visibility: 'org',
          columns: [
            { name: 'employee_id', type: 'integer', nullable: false },
            { name: 'salary', type: 'decimal', nullable: false },
          ],
        }),
      );
      await store.datasets.upsert(
        globex,
        'orders',
        datasetInput({
          description: 'Globex order book',
          tags: ['retail'],
          columns: [
            { name: 'ID', type: 'integer', nullable: false },
            { name: 'order_total', type: 'number', nullable: true },
          ],
        }),
      );
    });
    after(async () => dispose());

    it('lists by name without a query, and hides private datasets from outsiders', async () => {
      assert.deepEqual(await names({}), ['customer_orders', 'orders', 'weather_daily']);
      assert.deepEqual(await names({ viewer: { all: false, orgIds: [acmeOrg] } }), [
        'customer_orders',
        'internal_payroll',
        'orders',
        'weather_daily',
      ]);
      assert.deepEqual(await names({ viewer: { all: true, orgIds: [] } }), [
        'customer_orders',
        'internal_payroll',
        'orders',
        'weather_daily',
      ]);
      assert.deepEqual(await names({ q: 'salary' }), [], 'private dataset never matches for outsiders');
      assert.deepEqual(await names({ q: 'salary', viewer: { all: false, orgIds: [acmeOrg] } }), ['internal_payroll']);
    });

    it('matches every word as a prefix over name, tags, columns and descriptions; ranks exact name, name, name/tags/columns, description', async () => {
      assert.deepEqual(await names({ q: 'orders' }), ['orders', 'customer_orders', 'weather_daily']);
      assert.deepEqual(await names({ q: 'cust' }), ['customer_orders']);
      assert.deepEqual(await names({ q: 'customer name' }), ['customer_orders'], 'camelCase column split');
      assert.deepEqual(await names({ q: 'buyer' }), ['customer_orders'], 'column description');
      assert.deepEqual(await names({ q: 'weather eu' }), ['weather_daily']);
      assert.deepEqual(
        await names({ q: 'ID' }),
        ['orders', 'customer_orders'],
        'two-letter words are searchable; newest first within a tier',
      );
      assert.deepEqual(
        await names({ q: 'the' }),
        ['customer_orders', 'weather_daily'],
        'stopwords are searchable; a column description outranks a description',
      );
      assert.deepEqual(await names({ q: 'orders nothing' }), []);
    });

    it('treats SQL and full-text metacharacters as plain text', async () => {
      assert.deepEqual(await names({ q: `' OR 1=1 --` }), []);
      assert.deepEqual(await names({ q: `"*` }), []);
      assert.deepEqual(await names({ q: `orders") OR ("x` }), [], 'every word must match, including x');
      assert.deepEqual(
        await names({ q: '+orders -weather' }),
        ['weather_daily'],
        'boolean operators are not operators: both words must match',
      );
      assert.equal(await store.datasets.count(), 4, 'nothing was changed');
    });

    it('filters by tags (all of them), provider and exact column name', async () => {
      assert.deepEqual(await names({ tags: ['retail'] }), ['customer_orders', 'orders']);
      assert.deepEqual(await names({ tags: ['retail', 'eu'] }), ['customer_orders']);
      assert.deepEqual(await names({ providerId: globex }), ['orders']);
      assert.deepEqual(await names({ column: 'TEMP_C' }), ['weather_daily']);
      assert.deepEqual(await names({ column: 'id' }), ['orders'], 'exact column name, case-insensitive');
      assert.deepEqual(await names({ q: 'orders', tags: ['eu'], providerId: acme }), [
        'customer_orders',
        'weather_daily',
      ]);
    });

    it('ranks in tiers the same way on every engine, across pages', async () => {
      const more = await store.orgs.create({ name: 'tiers', displayName: 'Tiers', status: 'active' });
      const p = (
        await store.providers.create({ orgId: more.id, name: 'tiers-data', displayName: 'T', description: '' })
      ).id;
      await store.datasets.upsert(p, 'river_levels', datasetInput({ description: 'gauges' }));
      await store.datasets.upsert(p, 'gauges', datasetInput({ description: 'an index of river gauges' }));
      await store.datasets.upsert(p, 'stations', datasetInput({ tags: ['gauges'] }));
      await store.datasets.upsert(p, 'old_gauges_archive', datasetInput({}));
      await store.datasets.upsert(p, 'Gauges', datasetInput({ description: 'upper-case twin' }));
      await store.datasets.upsert(
        p,
        'flow',
        datasetInput({ columns: [{ name: 'gauge_id', type: 'integer', nullable: false }] }),
      );
      const expected = ['Gauges', 'gauges', 'old_gauges_archive', 'stations', 'river_levels'];
      assert.deepEqual(
        await names({ q: 'gauge' }),
        ['Gauges', 'old_gauges_archive', 'gauges', 'flow', 'stations', 'river_levels'],
        'no exact name; newest first per tier',
      );
      assert.deepEqual(await names({ q: 'gauges' }), expected);
      const paged: string[] = [];
      for (let offset = 0; offset < 8; offset += 2) paged.push(...(await names({ q: 'gauges', limit: 2, offset })));
      assert.deepEqual(paged, expected, 'pages follow the same order, tier boundaries included');
      assert.deepEqual(await names({ q: 'gauges', offset: 4, limit: 5 }), ['river_levels']);
      assert.deepEqual(await names({ q: 'gauges', providerId: acme }), []);
      for (const name of [...expected, 'flow']) await store.datasets.remove(p, name);
    });

    it('pages through results without overlap', async () => {
      const first = await store.datasets.search({ viewer: everyone, limit: 2, offset: 0 });
      const second = await store.datasets.search({ viewer: everyone, limit: 2, offset: 2 });
      assert.equal(first.hasMore, true);
      assert.equal(second.hasMore, false);
      assert.deepEqual(
        [...first.items, ...second.items].map((d) => d.name),
        ['customer_orders', 'orders', 'weather_daily'],
      );
    });

    it('replaces a dataset in place and re-indexes it; removes it completely', async () => {
      const before = await store.datasets.getByName(acme, 'weather_daily');
      const { record, created } = await store.datasets.upsert(
        acme,
        'weather_daily',
        datasetInput({ description: 'Hourly wind', tags: ['wind'], rowCount: 5 }),
      );
      assert.equal(created, false);
      assert.equal(record.id, before?.id, 'the id is stable');
      assert.equal(record.rowCount, 5);
      assert.deepEqual(await names({ q: 'rain' }), []);
      assert.deepEqual(await names({ q: 'wind' }), ['weather_daily']);
      assert.deepEqual(await names({ tags: ['weather'] }), []);
      assert.equal(await store.datasets.remove(acme, 'weather_daily'), true);
      assert.deepEqual(await names({ q: 'wind' }), []);
      assert.equal(await store.datasets.getByName(acme, 'weather_daily'), undefined);
      assert.equal(await store.datasets.remove(acme, 'weather_daily'), false);
    });

    it('keeps metadata exactly as given, Unicode included', async () => {
      const { record } = await store.datasets.upsert(
        globex,
        'données_été',
        datasetInput({
          description: 'Relevés météo — Zürich 🌦',
          columns: [{ name: 'température', type: 'number', nullable: true, sourceType: 'REAL', description: '°C' }],
          rowCount: null,
        }),
      );
      const loaded = await store.datasets.get(record.id);
      assert.equal(loaded?.name, 'données_été');
      assert.equal(loaded?.description, 'Relevés météo — Zürich 🌦');
      assert.deepEqual(loaded?.columns, [
        { name: 'température', type: 'number', nullable: true, sourceType: 'REAL', description: '°C' },
      ]);
      assert.equal(loaded?.rowCount, null);
      assert.deepEqual(await names({ q: 'zurich meteo' }), ['données_été']);
      assert.deepEqual(await names({ q: 'temperature' }), ['données_été']);
    });
  });
}
