import type { Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { sql, type CompiledQuery, type Expression, type Kysely, type RawBuilder } from 'kysely';
import type { PlannedAggregate, PlannedFilter, QueryPlan } from './data-source.js';

/** The SQL dialects the agent reads. */
export type SqlFlavour = 'sqlite' | 'postgres' | 'mysql';

/** Kysely needs a database type; the agent's tables are only known at run time. */
export type AnyDatabase = Record<string, Record<string, unknown>>;

type Raw = RawBuilder<unknown>;

/** `%`/`_` LIKE pattern (with `\` escapes) → SQLite GLOB pattern, which is case-sensitive like LIKE elsewhere. */
export function likeToGlob(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) {
      const next = pattern[++i] as string;
      out += next === '*' || next === '?' || next === '[' ? `[${next}]` : next;
    } else if (ch === '%') out += '*';
    else if (ch === '_') out += '?';
    else if (ch === '*' || ch === '?' || ch === '[') out += `[${ch}]`;
    else out += ch;
  }
  return out;
}

/**
 * Compiles a {@link QueryPlan} with Kysely. Identifiers reach the SQL only through
 * `sql.id()` (quoted and escaped by Kysely) and only from the plan, whose columns come
 * from the introspected schema; values are bound parameters. Text compares, orders and
 * groups by code point on every dialect (binary collation), so that the same request
 * gives the same rows everywhere.
 */
export class SqlCompiler {
  constructor(
    private readonly db: Kysely<AnyDatabase>,
    private readonly flavour: SqlFlavour,
  ) {}

  private id(column: Column): Raw {
    return sql`${sql.id(column.name)}`;
  }

  /** The column as compared and ordered: binary collation for text. */
  private cmp(column: Column): Raw {
    if (column.type !== 'text') return this.id(column);
    if (this.flavour === 'postgres') return sql`${sql.id(column.name)} COLLATE "C"`;
    if (this.flavour === 'mysql') return sql`CAST(${sql.id(column.name)} AS BINARY)`;
    return sql`${sql.id(column.name)} COLLATE BINARY`;
  }

  private param(value: DataValue, column: Column): unknown {
    if (typeof value === 'boolean' && this.flavour !== 'postgres') return value ? 1 : 0;
    if (column.type === 'timestamp' && this.flavour === 'mysql' && typeof value === 'string') {
      return value.replace('T', ' ').replace(/(Z|[+-]\d{2}:\d{2})$/, '');
    }
    return value;
  }

  private filter(f: PlannedFilter): Raw {
    const lhs = this.cmp(f.column);
    switch (f.op) {
      case 'is null':
        return sql`${this.id(f.column)} IS NULL`;
      case 'is not null':
        return sql`${this.id(f.column)} IS NOT NULL`;
      case 'in':
        return sql`${lhs} IN (${sql.join((f.value as DataValue[]).map((v) => this.param(v, f.column)))})`;
      case 'like': {
        const pattern = f.value as string;
        if (this.flavour === 'sqlite') return sql`${this.id(f.column)} GLOB ${likeToGlob(pattern)}`;
        if (this.flavour === 'mysql') return sql`${this.id(f.column)} LIKE ${pattern} COLLATE utf8mb4_bin`;
        return sql`${this.id(f.column)} LIKE ${pattern}`;
      }
      case '=':
        return sql`${lhs} = ${this.param(f.value as DataValue, f.column)}`;
      case '!=':
        return sql`${lhs} <> ${this.param(f.value as DataValue, f.column)}`;
      case '<':
        return sql`${lhs} < ${this.param(f.value as DataValue, f.column)}`;
      case '<=':
        return sql`${lhs} <= ${this.param(f.value as DataValue, f.column)}`;
      case '>':
        return sql`${lhs} > ${this.param(f.value as DataValue, f.column)}`;
      case '>=':
        return sql`${lhs} >= ${this.param(f.value as DataValue, f.column)}`;
    }
  }

  private aggregate(a: PlannedAggregate): Raw {
    const column = a.column;
    if (!column) return sql`count(*)`;
    const ref = a.clamp === undefined ? this.id(column) : this.clamped(column, a.clamp);
    switch (a.fn) {
      case 'count':
        return sql`count(${ref})`;
      case 'sum':
        return sql`sum(${ref})`;
      case 'avg':
        if (this.flavour === 'postgres') return sql`avg(CAST(${ref} AS double precision))`;
        if (this.flavour === 'mysql') return sql`avg(CAST(${ref} AS DOUBLE))`;
        return sql`avg(${ref})`;
      case 'min':
      case 'max': {
        const fn = sql.raw(a.fn);
        if (column.type === 'text' && this.flavour === 'mysql')
          return sql`CONVERT(${fn}(CAST(${ref} AS BINARY)) USING utf8mb4)`;
        return sql`${fn}(${this.cmp(column)})`;
      }
    }
  }

  /** The column's value clamped to [-bound, bound] (noise policy: a row's share of a sum is bounded). */
  private clamped(column: Column, bound: number): Raw {
    if (this.flavour === 'sqlite') return sql`max(min(${this.id(column)}, ${bound}), ${-bound})`;
    return sql`GREATEST(LEAST(${this.id(column)}, ${bound}), ${-bound})`;
  }

  /** The grouped column as selected: MySQL groups text by its bytes, so it selects one of the identical values. */
  private groupSelect(column: Column): Raw {
    if (column.type === 'text' && this.flavour === 'mysql') return sql`min(${this.id(column)})`;
    return this.id(column);
  }

  private groupKey(column: Column): Raw {
    return column.type === 'text' && this.flavour === 'mysql' ? this.cmp(column) : this.id(column);
  }

  /** Compile a plan against `table` (with its schema on PostgreSQL). */
  compile(plan: QueryPlan, table: { schema?: string; name: string }): CompiledQuery {
    const from = table.schema ? sql`${sql.id(table.schema, table.name)}` : sql`${sql.id(table.name)}`;
    let query = this.db.selectFrom(from.as('t'));
    if (plan.grouped) {
      const selections: Array<Expression<unknown> & { alias: string }> = [];
      for (const column of plan.groupBy) selections.push(this.groupSelect(column).as(column.name) as never);
      for (const agg of plan.aggregates) selections.push(this.aggregate(agg).as(agg.as) as never);
      query = query.select(selections as never);
      if (plan.groupBy.length > 0) query = query.groupBy(plan.groupBy.map((c) => this.groupKey(c)) as never);
      // Output policy: the agent adds the condition itself, whatever the application asked for.
      if (plan.minGroupSize !== undefined) query = query.having(sql`count(*) >= ${plan.minGroupSize}` as never);
    } else {
      query = query.select(plan.columns.map((c) => this.id(c).as(c.name)) as never);
    }
    for (const f of plan.where) query = query.where(this.filter(f) as never);
    for (const order of plan.orderBy) {
      const aggregate = plan.grouped ? plan.aggregates.find((a) => a.as === order.name) : undefined;
      const expr = aggregate ? this.aggregate(aggregate) : this.cmp(order.column as Column);
      const direction = order.direction;
      if (this.flavour === 'postgres') {
        query = query.orderBy(expr as never, (ob) =>
          direction === 'asc' ? ob.asc().nullsFirst() : ob.desc().nullsLast(),
        );
      } else {
        query = query.orderBy(expr as never, direction);
      }
    }
    query = query.limit(plan.limit);
    if (plan.offset > 0) query = query.offset(plan.offset);
    return query.compile();
  }
}
