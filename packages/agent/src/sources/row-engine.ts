import type { Column, ColumnType } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import type { PlannedAggregate, PlannedFilter, QueryPlan } from './data-source.js';
import { likeMatcher } from './like-matcher.js';
import { canonicalDecimal, isNumeric } from './values.js';
import { queryInvalid } from '../errors.js';

type Row = DataValue[];

/** Code point order for strings (JS compares UTF-16 units, which puts U+E000..U+FFFF after astral characters). */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/** Compare two non-null values of one logical type, as the SQL sources do. */
export function compareValues(type: ColumnType, a: DataValue, b: DataValue): number {
  if (isNumeric(type)) return Number(a) - Number(b);
  if (type === 'boolean') return Number(a) - Number(b);
  return compareText(String(a), String(b));
}

/** Nulls first ascending, last descending: what SQLite and MySQL do, and what we ask PostgreSQL to do. */
function comparator(
  keys: Array<{ index: number; type: ColumnType; direction: 'asc' | 'desc' }>,
): (a: Row, b: Row) => number {
  return (a, b) => {
    for (const key of keys) {
      const x = a[key.index] ?? null;
      const y = b[key.index] ?? null;
      let c: number;
      if (x === null || y === null) c = x === y ? 0 : x === null ? -1 : 1;
      else c = compareValues(key.type, x, y);
      if (c !== 0) return key.direction === 'asc' ? c : -c;
    }
    return 0;
  };
}

function predicate(filter: PlannedFilter, index: number): (row: Row) => boolean {
  const type = filter.column.type;
  const cmp = (x: DataValue) => compareValues(type, x, filter.value as DataValue);
  switch (filter.op) {
    case 'is null':
      return (r) => r[index] === null;
    case 'is not null':
      return (r) => r[index] !== null;
    case 'in': {
      const wanted = new Set((filter.value as DataValue[]).map((v) => (isNumeric(type) ? Number(v) : v)));
      return (r) => {
        const v = r[index] ?? null;
        return v !== null && wanted.has(isNumeric(type) ? Number(v) : v);
      };
    }
    case 'like': {
      const like = likeMatcher(filter.value as string);
      return (r) => {
        const v = r[index];
        return typeof v === 'string' && like(v);
      };
    }
    case '=':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) === 0;
    case '!=':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) !== 0;
    case '<':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) < 0;
    case '<=':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) <= 0;
    case '>':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) > 0;
    case '>=':
      return (r) => r[index] !== null && cmp(r[index] as DataValue) >= 0;
  }
}

interface Accumulator {
  add(value: DataValue): void;
  result(): DataValue;
}

function accumulator(agg: PlannedAggregate): Accumulator {
  const type = agg.column?.type ?? 'integer';
  switch (agg.fn) {
    case 'count': {
      let n = 0;
      return { add: (v) => void (agg.column === undefined || v !== null ? n++ : 0), result: () => n };
    }
    case 'sum':
    case 'avg': {
      let sum = 0;
      let n = 0;
      return {
        add: (v) => {
          if (v === null) return;
          sum += agg.clamp === undefined ? Number(v) : Math.max(-agg.clamp, Math.min(agg.clamp, Number(v)));
          n++;
        },
        result: () => (n === 0 ? null : agg.fn === 'avg' ? sum / n : type === 'decimal' ? canonicalDecimal(sum) : sum),
      };
    }
    case 'min':
    case 'max': {
      let best: DataValue = null;
      const sign = agg.fn === 'min' ? -1 : 1;
      return {
        add: (v) => {
          if (v !== null && (best === null || Math.sign(compareValues(type, v, best)) === sign)) best = v;
        },
        result: () => best,
      };
    }
  }
}

/**
 * Runs a {@link QueryPlan} over rows streamed in dataset column order: filters while
 * streaming, orders with a bounded buffer, groups in a map. Used for CSV files, which
 * have no query engine of their own.
 */
export async function* runPlan(
  plan: QueryPlan,
  rows: AsyncIterable<Row[]>,
  options: { maxSortRows: number },
): AsyncGenerator<Row[]> {
  const indexOf = new Map(plan.dataset.columns.map((c, i) => [c.name, i]));
  const idx = (column: Column) => indexOf.get(column.name) as number;
  const tests = plan.where.map((f) => predicate(f, idx(f.column)));
  const keep = tests.length === 0 ? () => true : (r: Row) => tests.every((t) => t(r));
  const end = plan.offset + plan.limit;
  if (plan.limit === 0) return;

  if (!plan.grouped) {
    const project = plan.columns.map(idx);
    const shape = (r: Row): Row => project.map((i) => r[i] ?? null);
    if (plan.orderBy.length === 0) {
      let seen = 0;
      for await (const batch of rows) {
        const out: Row[] = [];
        for (const r of batch) {
          if (!keep(r)) continue;
          seen++;
          if (seen > plan.offset) out.push(shape(r));
          if (seen >= end) break;
        }
        if (out.length > 0) yield out;
        if (seen >= end) return;
      }
      return;
    }
    const order = comparator(
      plan.orderBy.map((o) => ({ index: idx(o.column as Column), type: o.type, direction: o.direction })),
    );
    let buffer: Row[] = [];
    const cap = Math.min(end, options.maxSortRows);
    for await (const batch of rows) {
      for (const r of batch) if (keep(r)) buffer.push(r);
      if (buffer.length > 2 * cap) {
        if (end > options.maxSortRows) {
          throw queryInvalid(
            `ordering more than ${options.maxSortRows} rows of a CSV file needs a smaller limit or a narrower filter`,
          );
        }
        buffer.sort(order);
        buffer = buffer.slice(0, cap);
      }
    }
    buffer.sort(order);
    const slice = buffer.slice(plan.offset, end).map(shape);
    for (let i = 0; i < slice.length; i += 2000) yield slice.slice(i, i + 2000);
    return;
  }

  const groupIdx = plan.groupBy.map(idx);
  const aggIdx = plan.aggregates.map((a) => (a.column ? idx(a.column) : -1));
  const groups = new Map<string, { key: Row; accs: Accumulator[]; n: number }>();
  const group = (key: Row) => ({ key, accs: plan.aggregates.map(accumulator), n: 0 });
  if (plan.groupBy.length === 0) groups.set('', group([]));
  for await (const batch of rows) {
    for (const r of batch) {
      if (!keep(r)) continue;
      const key = groupIdx.map((i) => r[i] ?? null);
      const id = groupIdx.length === 0 ? '' : JSON.stringify(key);
      let g = groups.get(id);
      if (!g) {
        if (groups.size >= options.maxSortRows) throw queryInvalid(`more than ${options.maxSortRows} groups`);
        g = group(key);
        groups.set(id, g);
      }
      g.n++;
      for (let i = 0; i < g.accs.length; i++)
        (g.accs[i] as Accumulator).add(aggIdx[i] === -1 ? 1 : (r[aggIdx[i] as number] ?? null));
    }
  }
  const k = plan.minGroupSize ?? 0;
  const out: Row[] = [...groups.values()]
    .filter((g) => g.n >= k)
    .map((g) => [...g.key, ...g.accs.map((a) => a.result())]);
  if (plan.orderBy.length > 0) {
    const outIndex = new Map(plan.output.map((o, i) => [o.name, i]));
    out.sort(
      comparator(
        plan.orderBy.map((o) => ({ index: outIndex.get(o.name) as number, type: o.type, direction: o.direction })),
      ),
    );
  }
  const slice = out.slice(plan.offset, end);
  for (let i = 0; i < slice.length; i += 2000) yield slice.slice(i, i + 2000);
}
