import type { ColumnType, DatasetInput } from '@insitu/core';
import BetterSqlite3 from 'better-sqlite3';

/** Descriptions and tags for one table, as a provider would write them in its agent config. */
export interface TableMeta {
  description: string;
  tags: string[];
  columns?: Record<string, string>;
}

function logicalType(declared: string): ColumnType {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'integer';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'number';
  if (t.includes('DEC') || t.includes('NUM')) return 'decimal';
  if (t.includes('TIMESTAMP') || t.includes('DATETIME')) return 'timestamp';
  if (t.includes('DATE')) return 'date';
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('BLOB')) return 'binary';
  if (t.includes('CHAR') || t.includes('TEXT') || t.includes('CLOB')) return 'text';
  return 'unknown';
}

/**
 * Metadata of every table of a SQLite file: columns, types, nullability, row count.
 * Opens the file read-only. Rows are counted, never read.
 */
export function introspectSqlite(path: string, meta: Record<string, TableMeta>): Array<{ name: string; input: DatasetInput }> {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>;
    return tables.map(({ name }) => {
      const info = db.prepare('SELECT name, type, "notnull" AS not_null, pk FROM pragma_table_info(?)').all(name) as Array<{ name: string; type: string; not_null: number; pk: number }>;
      const count = db.prepare(`SELECT count(*) AS n FROM "${name.replace(/"/g, '""')}"`).get() as { n: number };
      const tableMeta = meta[name];
      return {
        name,
        input: {
          sourceKind: 'sqlite',
          description: tableMeta?.description ?? '',
          tags: tableMeta?.tags ?? [],
          visibility: 'public',
          rowCount: count.n,
          columns: info.map((c) => ({
            name: c.name,
            type: logicalType(c.type),
            sourceType: c.type,
            nullable: c.not_null === 0 && c.pk === 0,
            ...(tableMeta?.columns?.[c.name] ? { description: tableMeta.columns[c.name] } : {}),
          })),
        },
      };
    });
  } finally {
    db.close();
  }
}
