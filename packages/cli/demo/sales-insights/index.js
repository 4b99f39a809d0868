// sales-insights: a demo data application. It runs at the provider, reads the datasets
// its insitu.json declares through the agent's data API (aggregates pushed down to the
// source), and answers with aggregates only: no sales row and no loyalty card id leaves.
import { readDataset, respond, serve } from '@insitu/sdk';

const round = (n) => Math.round(n * 100) / 100;

async function all(name, query) {
  const rows = [];
  for await (const row of readDataset(name, query)) rows.push(row);
  return rows;
}

/** Revenue and number of sales per store, summed in the source. */
async function revenueByStore() {
  return all('sales', {
    groupBy: ['store_id'],
    aggregates: [
      { fn: 'sum', column: 'amount', as: 'revenue' },
      { fn: 'count', as: 'sales' },
    ],
  });
}

async function stores() {
  return all('stores', { columns: ['store_id', 'city', 'country'] });
}

async function revenueByCity() {
  const [byStore, storeRows] = await Promise.all([revenueByStore(), stores()]);
  const cityOf = new Map(storeRows.map((s) => [s.store_id, s]));
  const cities = new Map();
  for (const row of byStore) {
    const store = cityOf.get(row.store_id);
    if (!store) continue;
    const city = cities.get(store.city) ?? {
      city: store.city,
      country: store.country,
      stores: 0,
      revenue: 0,
      sales: 0,
    };
    city.stores += 1;
    city.revenue += Number(row.revenue);
    city.sales += Number(row.sales);
    cities.set(store.city, city);
  }
  return [...cities.values()]
    .map((c) => ({ ...c, revenue: round(c.revenue), averageBasket: round(c.revenue / Math.max(1, c.sales)) }))
    .sort((a, b) => b.revenue - a.revenue);
}

serve({
  'GET /cities': async () => ({ currency: 'EUR', cities: await revenueByCity() }),

  'GET /cities/{city}': async ({ params }) => {
    const inCity = await all('stores', {
      columns: ['store_id', 'opened_on', 'floor_area_m2'],
      where: [{ column: 'city', op: '=', value: params.city }],
    });
    if (inCity.length === 0) return respond(404, { error: `no stores in ${params.city}` });
    const revenue = await all('sales', {
      where: [{ column: 'store_id', op: 'in', value: inCity.map((s) => s.store_id) }],
      groupBy: ['store_id'],
      aggregates: [{ fn: 'sum', column: 'amount', as: 'revenue' }],
    });
    const byStore = new Map(revenue.map((r) => [r.store_id, Number(r.revenue)]));
    return {
      city: params.city,
      stores: inCity.map((s) => ({
        store: s.store_id,
        openedOn: s.opened_on,
        floorAreaM2: s.floor_area_m2,
        revenue: round(byStore.get(s.store_id) ?? 0),
      })),
    };
  },

  'GET /top-products': async ({ query }) => {
    const limit = Math.min(50, Math.max(1, Number(query.get('limit') ?? 10) || 10));
    const top = await all('sales', {
      groupBy: ['product_id'],
      aggregates: [
        { fn: 'sum', column: 'quantity', as: 'units' },
        { fn: 'sum', column: 'amount', as: 'revenue' },
      ],
      orderBy: '-units',
      limit,
    });
    const products = await all('products', {
      columns: ['product_id', 'name', 'category'],
      where: [{ column: 'product_id', op: 'in', value: top.map((t) => t.product_id) }],
    });
    const byId = new Map(products.map((p) => [p.product_id, p]));
    return top.map((t) => ({
      product: byId.get(t.product_id)?.name,
      category: byId.get(t.product_id)?.category,
      units: Number(t.units),
      revenue: round(Number(t.revenue)),
    }));
  },

  'GET /climate': async () => {
    const [cities, weather] = await Promise.all([
      revenueByCity(),
      all('weather', {
        groupBy: ['city'],
        aggregates: [
          { fn: 'avg', column: 'temp_c', as: 'meanTempC' },
          { fn: 'sum', column: 'precipitation_mm', as: 'rainMm' },
        ],
      }),
    ]);
    const climate = new Map(weather.map((w) => [w.city, w]));
    return cities.map((c) => ({
      city: c.city,
      revenue: c.revenue,
      meanTempC: round(Number(climate.get(c.city)?.meanTempC ?? NaN)),
      rainMm: round(Number(climate.get(c.city)?.rainMm ?? NaN)),
    }));
  },
});
