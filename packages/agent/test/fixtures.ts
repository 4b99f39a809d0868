// Test data: one "sales" table loaded identically into SQLite, CSV, PostgreSQL and
// MariaDB, with values chosen to catch dialect differences (case, accents and astral
// characters in text, nulls, decimals with trailing zeros, booleans, dates).
import { writeFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';

export interface SaleRow {
  id: number;
  store: string;
  city: string;
  amount: string;
  qty: number;
  price: number;
  sold_on: string;
  returned: boolean | null;
  note: string | null;
}

const CITIES = ['Berlin', 'berlin', 'Zürich', 'Ørsted', 'Aachen', 'B_town', '𝔘nicode', '\uE000pua', "O'Brien"];
const STORES = ['north', 'south', 'east', 'west'];

/** `n` deterministic rows. */
export function salesRows(n = 60): SaleRow[] {
  const rows: SaleRow[] = [];
  for (let i = 1; i <= n; i++) {
    rows.push({
      id: i,
      store: STORES[i % STORES.length] as string,
      city: CITIES[(i * 7) % CITIES.length] as string,
      amount: `${(i * 37) % 100}.${String((i * 13) % 100).padStart(2, '0')}`,
      qty: (i * 5) % 9,
      price: ((i * 11) % 40) / 4,
      sold_on: `2025-${String(((i * 3) % 12) + 1).padStart(2, '0')}-${String(((i * 5) % 28) + 1).padStart(2, '0')}`,
      returned: i % 5 === 0 ? null : i % 3 === 0,
      note: i % 4 === 0 ? null : `note ${i % 7}${i % 2 ? ' %' : ''}`,
    });
  }
  return rows;
}

export const SALES_COLUMNS = ['id', 'store', 'city', 'amount', 'qty', 'price', 'sold_on', 'returned', 'note'] as const;

function sqlText(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
function pgText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function values(rows: SaleRow[], text: (v: string) => string, bool: (v: boolean) => string): string {
  return rows
    .map(
      (r) =>
        `(${r.id}, ${text(r.store)}, ${text(r.city)}, ${r.amount}, ${r.qty}, ${r.price}, ${text(r.sold_on)}, ${r.returned === null ? 'NULL' : bool(r.returned)}, ${r.note === null ? 'NULL' : text(r.note)})`,
    )
    .join(',\n');
}

export function writeSqlite(path: string, rows: SaleRow[]): void {
  const db = new BetterSqlite3(path);
  db.exec(`CREATE TABLE sales (id INTEGER PRIMARY KEY, store TEXT NOT NULL, city TEXT NOT NULL, amount DECIMAL(10,2) NOT NULL, qty INTEGER NOT NULL,
    price REAL NOT NULL, sold_on DATE NOT NULL, returned BOOLEAN, note TEXT)`);
  const insert = db.prepare('INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const r of rows)
      insert.run(
        r.id,
        r.store,
        r.city,
        Number(r.amount),
        r.qty,
        r.price,
        r.sold_on,
        r.returned === null ? null : r.returned ? 1 : 0,
        r.note,
      );
  })();
  db.close();
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function writeCsv(path: string, rows: SaleRow[]): void {
  const lines = [SALES_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [r.id, r.store, r.city, r.amount, r.qty, r.price, r.sold_on, r.returned === null ? '' : r.returned, r.note ?? '']
        .map((v) => csvField(String(v)))
        .join(','),
    );
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** SQL that creates and fills `sales` in PostgreSQL, plus a read-only role `reader`. */
export function postgresSetup(rows: SaleRow[], readerPassword: string): string {
  return `CREATE TABLE sales (id integer PRIMARY KEY, store text NOT NULL, city text NOT NULL, amount numeric(10,2) NOT NULL, qty integer NOT NULL,
    price double precision NOT NULL, sold_on date NOT NULL, returned boolean, note text);
  INSERT INTO sales VALUES ${values(rows, pgText, (b) => (b ? 'true' : 'false'))};
  CREATE ROLE reader LOGIN PASSWORD ${pgText(readerPassword)};
  GRANT USAGE ON SCHEMA public TO reader;
  GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;`;
}

/** SQL that creates and fills `sales` in MariaDB (utf8mb4, case-insensitive default collation), plus a read-only account. */
export function mariadbSetup(database: string, rows: SaleRow[], readerPassword: string): string {
  return `SET NAMES utf8mb4;
  CREATE TABLE sales (id INT PRIMARY KEY, store VARCHAR(32) NOT NULL, city VARCHAR(64) NOT NULL, amount DECIMAL(10,2) NOT NULL, qty INT NOT NULL,
    price DOUBLE NOT NULL, sold_on DATE NOT NULL, returned BOOLEAN NULL, note TEXT NULL) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
  INSERT INTO sales VALUES ${values(rows, sqlText, (b) => (b ? '1' : '0'))};
  CREATE USER 'reader'@'%' IDENTIFIED BY ${sqlText(readerPassword)};
  CREATE USER 'reader'@'localhost' IDENTIFIED BY ${sqlText(readerPassword)};
  GRANT SELECT ON \`${database}\`.* TO 'reader'@'%';
  GRANT SELECT ON \`${database}\`.* TO 'reader'@'localhost';`;
}
