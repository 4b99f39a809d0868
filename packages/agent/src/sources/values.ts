import type { ColumnType } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';

/** Converts a driver's value to its wire form for one logical type. */
export type WireConverter = (value: unknown) => DataValue;

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** `2025-01-02 03:04:05+00` → `2025-01-02T03:04:05Z`; other offsets are kept as `+HH:MM`. */
export function normaliseTimestamp(text: string): string {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return text;
  let zone = m[3] ?? '';
  if (zone !== '' && zone !== 'Z') {
    const digits = zone.replace(':', '');
    zone = /^[+-]00(00)?$/.test(digits) ? 'Z' : `${digits.slice(0, 3)}:${digits.slice(3, 5) || '00'}`;
  }
  return `${m[1]}T${m[2]}${zone}`;
}

/** `12.50` → `12.5`, `3.000` → `3`, `-0.0` → `0`: one spelling per decimal value, whatever the source. */
export function canonicalDecimal(value: string | number | bigint): string {
  // A decimal that arrives as a double (SQLite stores DECIMAL as REAL; sums of them) carries
  // binary noise past its 15th significant digit, which no decimal value of ours has.
  let text =
    typeof value === 'string'
      ? value.trim()
      : typeof value === 'number'
        ? String(Number(value.toPrecision(15)))
        : value.toString();
  if (/e/i.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) text = n.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
  }
  if (text.includes('.')) text = text.replace(/0+$/, '').replace(/\.$/, '');
  if (/^-0*$/.test(text)) return '0';
  return text;
}

function integer(value: unknown): DataValue {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'string') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  return scalar(value);
}

function scalar(value: unknown): DataValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return JSON.stringify(value);
}

const CONVERTERS: Record<ColumnType, WireConverter> = {
  integer: (v) => (v === null || v === undefined ? null : integer(v)),
  number: (v) =>
    v === null || v === undefined
      ? null
      : typeof v === 'number'
        ? v
        : Number.isFinite(Number(v))
          ? Number(v)
          : scalar(v),
  decimal: (v) =>
    v === null || v === undefined
      ? null
      : typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint'
        ? canonicalDecimal(v)
        : scalar(v),
  boolean: (v) =>
    v === null || v === undefined
      ? null
      : typeof v === 'boolean'
        ? v
        : typeof v === 'number' || typeof v === 'bigint'
          ? Number(v) !== 0
          : v === 't' || v === 'true' || v === '1',
  date: (v) => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString().slice(0, 10) : scalar(v)),
  timestamp: (v) =>
    v === null || v === undefined
      ? null
      : v instanceof Date
        ? v.toISOString()
        : typeof v === 'string'
          ? normaliseTimestamp(v)
          : scalar(v),
  binary: scalar,
  json: (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v)),
  text: (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : String(scalar(v))),
  unknown: scalar,
};

/** The converter for a logical type. */
export function wireConverter(type: ColumnType): WireConverter {
  return CONVERTERS[type];
}

/** Convert every row in place, column by column; columns whose converter is `null` are left as they are. */
export function convertRows(rows: unknown[][], converters: ReadonlyArray<WireConverter | null>): DataValue[][] {
  for (const row of rows) {
    for (let i = 0; i < converters.length; i++) {
      const convert = converters[i];
      if (convert) row[i] = convert(row[i]);
    }
  }
  return rows as DataValue[][];
}

/** Convert rows in place (as {@link convertRows}) and serialise them as data API row lines: one JSON array and a newline each. */
export function rowLines(rows: unknown[][], converters: ReadonlyArray<WireConverter | null>): string {
  let text = '';
  for (const row of convertRows(rows, converters)) text += `${JSON.stringify(row)}\n`;
  return text;
}

/** The converters for a worker query's `types` (`null`: leave the driver's value). */
export function wireConverters(types: ReadonlyArray<ColumnType | null>): Array<WireConverter | null> {
  return types.map((t) => (t === null ? null : wireConverter(t)));
}

/** SQLite declared type → logical type, following SQLite's affinity rules. */
export function sqliteColumnType(declared: string): ColumnType {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'integer';
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('TIMESTAMP') || t.includes('DATETIME')) return 'timestamp';
  if (t.includes('DATE')) return 'date';
  if (t.includes('JSON')) return 'json';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'text';
  if (t === '') return 'unknown';
  if (t.includes('BLOB')) return 'binary';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'number';
  if (t.includes('DEC') || t.includes('NUM')) return 'decimal';
  return 'unknown';
}

/** PostgreSQL `information_schema.columns.udt_name` → logical type. */
export function postgresColumnType(udt: string): ColumnType {
  switch (udt) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'integer';
    case 'float4':
    case 'float8':
      return 'number';
    case 'numeric':
    case 'money':
      return 'decimal';
    case 'bool':
      return 'boolean';
    case 'date':
      return 'date';
    case 'timestamp':
    case 'timestamptz':
      return 'timestamp';
    case 'bytea':
      return 'binary';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'uuid':
    case 'citext':
      return 'text';
    default:
      return 'unknown';
  }
}

/** MySQL/MariaDB `information_schema.columns` (data_type, column_type) → logical type. */
export function mysqlColumnType(dataType: string, columnType: string): ColumnType {
  const t = dataType.toLowerCase();
  if (t === 'tinyint' && /^tinyint\(1\)/i.test(columnType)) return 'boolean';
  if (['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'year'].includes(t)) return 'integer';
  if (['float', 'double', 'real'].includes(t)) return 'number';
  if (t === 'decimal' || t === 'numeric') return 'decimal';
  if (t === 'bit' && /^bit\(1\)/i.test(columnType)) return 'boolean';
  if (t === 'date') return 'date';
  if (t === 'datetime' || t === 'timestamp') return 'timestamp';
  if (['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'].includes(t)) return 'binary';
  if (t === 'json') return 'json';
  if (['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set'].includes(t)) return 'text';
  return 'unknown';
}

/** Types whose values order and compare as numbers. */
export function isNumeric(type: ColumnType): boolean {
  return type === 'integer' || type === 'number' || type === 'decimal';
}
