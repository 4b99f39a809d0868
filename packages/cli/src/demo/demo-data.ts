import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { seededRandom } from '@insitu/core';
import BetterSqlite3 from 'better-sqlite3';

const CITIES: Array<[string, string, number]> = [
  ['Lisbon', 'PT', 17.5],
  ['Porto', 'PT', 15.8],
  ['Madrid', 'ES', 15.0],
  ['Barcelona', 'ES', 16.5],
  ['Lyon', 'FR', 12.5],
  ['Paris', 'FR', 12.3],
  ['Berlin', 'DE', 10.0],
  ['Munich', 'DE', 9.0],
  ['Vienna', 'AT', 10.5],
  ['Milan', 'IT', 13.5],
  ['Rome', 'IT', 15.5],
  ['Amsterdam', 'NL', 10.5],
  ['Brussels', 'BE', 10.8],
  ['Copenhagen', 'DK', 9.0],
  ['Stockholm', 'SE', 7.5],
  ['Oslo', 'NO', 6.5],
  ['Helsinki', 'FI', 5.9],
  ['Warsaw', 'PL', 8.5],
  ['Prague', 'CZ', 9.0],
  ['Dublin', 'IE', 10.0],
];
const CATEGORIES = ['bakery', 'dairy', 'produce', 'beverages', 'household', 'frozen', 'snacks', 'personal-care'];
const ADJECTIVES = ['organic', 'classic', 'fresh', 'family', 'premium', 'light', 'local', 'value'];
const NOUNS: Record<string, string[]> = {
  bakery: ['sourdough', 'baguette', 'croissant', 'rye loaf'],
  dairy: ['milk', 'yoghurt', 'butter', 'cheddar'],
  produce: ['apples', 'tomatoes', 'spinach', 'bananas'],
  beverages: ['orange juice', 'sparkling water', 'coffee beans', 'green tea'],
  household: ['dish soap', 'paper towels', 'detergent', 'sponges'],
  frozen: ['peas', 'pizza', 'ice cream', 'berries'],
  snacks: ['crisps', 'almonds', 'dark chocolate', 'granola'],
  'personal-care': ['shampoo', 'toothpaste', 'soap bar', 'sunscreen'],
};

/** How many rows the demo tables get. */
export const DEMO_SIZES = { stores: CITIES.length * 3, products: 160, sales: 60_000, weatherDays: 365 };

/**
 * Write the demo provider's data: a SQLite file with stores, products, a year of sales
 * and daily weather per city. Synthetic, generated locally from a fixed seed. Written to
 * a temp file and renamed, so a crash never leaves half a database; an existing file is kept.
 */
export async function writeDemoData(path: string): Promise<{ created: boolean }> {
  if (existsSync(path)) return { created: false };
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp`;
  await rm(temp, { force: true });
  const db = new BetterSqlite3(temp);
  try {
    const random = seededRandom(20261125);
    db.exec(`
      CREATE TABLE stores (store_id INTEGER PRIMARY KEY, city TEXT NOT NULL, country TEXT NOT NULL, opened_on DATE NOT NULL, floor_area_m2 REAL NOT NULL);
      CREATE TABLE products (product_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, unit_price REAL NOT NULL);
      CREATE TABLE sales (sale_id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL REFERENCES stores(store_id), product_id INTEGER NOT NULL REFERENCES products(product_id), sold_at TIMESTAMP NOT NULL, quantity INTEGER NOT NULL, amount REAL NOT NULL, loyalty_card TEXT);
      CREATE TABLE weather (city TEXT NOT NULL, day DATE NOT NULL, temp_c REAL NOT NULL, precipitation_mm REAL NOT NULL, PRIMARY KEY (city, day));
      CREATE INDEX sales_store ON sales(store_id);
      CREATE INDEX sales_sold_at ON sales(sold_at);
    `);
    const fill = db.transaction(() => {
      const insertStore = db.prepare('INSERT INTO stores VALUES (?, ?, ?, ?, ?)');
      let storeId = 0;
      for (const [city, country] of CITIES) {
        for (let i = 0; i < 3; i++) {
          storeId += 1;
          const opened = new Date(
            Date.UTC(2005 + Math.floor(random() * 18), Math.floor(random() * 12), 1 + Math.floor(random() * 28)),
          );
          insertStore.run(storeId, city, country, opened.toISOString().slice(0, 10), Math.round(400 + random() * 2600));
        }
      }
      const insertProduct = db.prepare('INSERT INTO products VALUES (?, ?, ?, ?)');
      const prices: number[] = [];
      for (let id = 1; id <= DEMO_SIZES.products; id++) {
        const category = CATEGORIES[id % CATEGORIES.length] ?? 'bakery';
        const nouns = NOUNS[category] ?? ['item'];
        const name = `${ADJECTIVES[Math.floor(random() * ADJECTIVES.length)]} ${nouns[Math.floor(random() * nouns.length)]}`;
        const price = Math.round((0.5 + random() * 14.5) * 100) / 100;
        prices[id] = price;
        insertProduct.run(id, name, category, price);
      }
      const insertSale = db.prepare('INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)');
      const start = Date.UTC(2025, 0, 1);
      const year = 365 * 86_400_000;
      for (let id = 1; id <= DEMO_SIZES.sales; id++) {
        const product = 1 + Math.floor(random() * DEMO_SIZES.products);
        const quantity = 1 + Math.floor(random() * random() * 8);
        const soldAt = new Date(start + Math.floor(random() * year)).toISOString().replace('T', ' ').slice(0, 19);
        const card = random() < 0.4 ? `LC${String(Math.floor(random() * 1e6)).padStart(6, '0')}` : null;
        insertSale.run(
          id,
          1 + Math.floor(random() * storeId),
          product,
          soldAt,
          quantity,
          Math.round(quantity * (prices[product] ?? 1) * 100) / 100,
          card,
        );
      }
      const insertWeather = db.prepare('INSERT INTO weather VALUES (?, ?, ?, ?)');
      for (const [city, , mean] of CITIES) {
        for (let d = 0; d < DEMO_SIZES.weatherDays; d++) {
          const day = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
          const seasonal = -Math.cos(((d - 15) / 365) * 2 * Math.PI) * 9;
          const temp = Math.round((mean + seasonal + (random() - 0.5) * 8) * 10) / 10;
          const rain = random() < 0.3 ? Math.round(random() * random() * 300) / 10 : 0;
          insertWeather.run(city, day, temp, rain);
        }
      }
    });
    fill();
  } finally {
    db.close();
  }
  await rename(temp, path);
  return { created: true };
}
