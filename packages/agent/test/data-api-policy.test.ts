import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, type OutputPolicy } from '@insitu/core';
import { DataApiError, listDatasets, readDataset, type DataValue } from '@insitu/sdk';
import { makeTempDir, removeDir, startMariaDb, type MariaDbInstance } from '@insitu/test-helpers';
import { DataApiServer, DatasetRegistry, openSource, parseAgentConfig } from '../src/index.js';
import { PrivacyBudget } from '../src/data-api/privacy-budget.js';
import { mariadbSetup, salesRows, writeCsv, writeSqlite } from './fixtures.js';

const withMariaDb = process.env.INSITU_TEST_MARIADB !== '0';
const rows = salesRows(60);
const logger = createLogger({ name: 'test', level: 'silent' });
const K = 7;
/** The policy of the agent's config for the "strict" datasets on every source. */
const STRICT: OutputPolicy = { aggregatesOnly: true, minGroupSize: K, neverLeave: ['note', 'AMOUNT'] };

interface Answer {
  status: number;
  columns?: string[];
  rows: DataValue[][];
  end?: { rows: number; truncated: boolean };
  code?: string;
}

/** One data API query over the socket, every line of the answer kept. */
function ask(socketPath: string, dataset: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: `/v1/datasets/${encodeURIComponent(dataset)}/query`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('error', reject);
        res.on('end', () => {
          const answer: Answer = { status: res.statusCode ?? 0, rows: [] };
          if (answer.status !== 200) {
            answer.code = (JSON.parse(text) as { error: { code: string } }).error.code;
            resolve(answer);
            return;
          }
          for (const line of text.split('\n').filter((l) => l !== '')) {
            const value = JSON.parse(line) as unknown;
            if (Array.isArray(value)) answer.rows.push(value as DataValue[]);
            else if ((value as { columns?: unknown }).columns)
              answer.columns = (value as { columns: Array<{ name: string }> }).columns.map((c) => c.name);
            else if ((value as { end?: unknown }).end) answer.end = (value as { end: Answer['end'] }).end;
            else if ((value as { error?: { code: string } }).error)
              answer.code = (value as { error: { code: string } }).error.code;
          }
          resolve(answer);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function refusedWith(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof DataApiError && e.code === code && e.status === 403;
}

describe('output policies, enforced by the data API on SQLite, CSV and MariaDB', () => {
  let dir = '';
  let maria: MariaDbInstance | undefined;
  let registry: DatasetRegistry;
  let api: DataApiServer;
  let other: DataApiServer;
  let socketPath = '';
  let otherSocket = '';
  let budgetFile = '';
  /** What the platform carries, by dataset name; tests change it. */
  const platform = new Map<string, OutputPolicy>();
  let strict: string[] = [];

  before(async () => {
    dir = await makeTempDir('insitu-agent-policy-');
    writeSqlite(join(dir, 'shop.db'), rows);
    writeSqlite(join(dir, 'open.db'), rows);
    writeSqlite(join(dir, 'noisy.db'), rows);
    writeCsv(join(dir, 'sales.csv'), rows);
    maria = withMariaDb ? await startMariaDb() : undefined;
    if (maria) await maria.query(mariadbSetup(maria.database, rows, 'reader-pw'));
    const config = parseAgentConfig(
      {
        sources: [
          {
            name: 'lite',
            kind: 'sqlite',
            path: 'shop.db',
            datasets: { sales: { name: 'strict_sqlite', policy: STRICT } },
          },
          {
            name: 'files',
            kind: 'csv',
            files: './sales.csv',
            defaults: { policy: STRICT },
            datasets: { sales: { name: 'strict_csv', columns: { amount: { type: 'decimal' } } } },
          },
          ...(maria
            ? [
                {
                  name: 'maria',
                  kind: 'mysql',
                  host: maria.host,
                  port: maria.port,
                  database: maria.database,
                  user: 'reader',
                  passwordEnv: 'READER_PW',
                  datasets: { sales: { name: 'strict_mariadb', policy: STRICT } },
                },
              ]
            : []),
          {
            name: 'open',
            kind: 'sqlite',
            path: 'open.db',
            datasets: { sales: { name: 'open_sales', policy: { maxRowsPerAnswer: 5, neverLeave: ['note'] } } },
          },
          {
            name: 'noisy',
            kind: 'sqlite',
            path: 'noisy.db',
            datasets: {
              sales: {
                name: 'noisy_sales',
                policy: { noise: { epsilonPerQuery: 0.5, budget: 2, sumBounds: { qty: 10 } } },
              },
            },
          },
        ],
      },
      { what: 'test config', baseDir: dir },
    );
    registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits, { READER_PW: 'reader-pw' })),
      logger,
    );
    const report = await registry.refresh();
    assert.deepEqual(
      report.sources.filter((s) => s.error),
      [],
    );
    strict = report.datasets.map((d) => d.name).filter((n) => n.startsWith('strict_'));
    assert.equal(strict.length, maria ? 3 : 2);
    budgetFile = join(dir, 'privacy-budget.json');
    const budget = new PrivacyBudget(budgetFile);
    const platformPolicies = { get: (name: string) => platform.get(name) };
    api = new DataApiServer({
      registry,
      declared: '*',
      limits: config.limits,
      logger,
      caller: 'dep-a',
      platformPolicies,
      budget,
    });
    socketPath = join(dir, 'a.sock');
    await api.listen(socketPath);
    other = new DataApiServer({
      registry,
      declared: '*',
      limits: config.limits,
      logger,
      caller: 'dep-b',
      platformPolicies,
      budget,
    });
    otherSocket = join(dir, 'b.sock');
    await other.listen(otherSocket);
  });

  after(async () => {
    await api?.close();
    await other?.close();
    await registry?.close();
    await maria?.stop();
    await removeDir(dir);
  });

  it('shows each dataset its effective policy', async () => {
    const listed = await listDatasets({ socketPath });
    assert.deepEqual(listed.find((d) => d.name === 'strict_sqlite')?.policy, STRICT);
    assert.deepEqual(listed.find((d) => d.name === 'strict_csv')?.policy, STRICT, 'the source default applies');
    assert.deepEqual(listed.find((d) => d.name === 'open_sales')?.policy, {
      maxRowsPerAnswer: 5,
      neverLeave: ['note'],
    });
  });

  it('refuses an application reading rows of an aggregatesOnly dataset, with a coded error the SDK surfaces', async () => {
    for (const name of strict) {
      await assert.rejects(readDataset(name, { socketPath }).next(), refusedWith('INSITU_POLICY_AGGREGATES_ONLY'));
      await assert.rejects(
        readDataset(name, {
          socketPath,
          columns: ['store', 'qty'],
          where: [{ column: 'qty', op: '>', value: 3 }],
        }).next(),
        refusedWith('INSITU_POLICY_AGGREGATES_ONLY'),
      );
      // Bare group keys are not an aggregate.
      assert.equal((await ask(socketPath, name, { groupBy: ['id'] })).code, 'INSITU_POLICY_AGGREGATES_ONLY');
    }
  });

  it('leaves out groups under k, also when the application did not ask for a count, and a small whole table', async () => {
    const perCity = new Map<string, number>();
    for (const r of rows) perCity.set(r.city, (perCity.get(r.city) ?? 0) + 1);
    const big = [...perCity].filter(([, n]) => n >= K).map(([c]) => c);
    const small = [...perCity].filter(([, n]) => n < K).map(([c]) => c);
    assert.ok(big.length > 0 && small.length > 0, 'the fixture has groups on both sides of k');
    const sumQty = (city: string) => rows.filter((r) => r.city === city).reduce((s, r) => s + r.qty, 0);
    for (const name of strict) {
      const counted = await ask(socketPath, name, { groupBy: ['city'], aggregates: [{ fn: 'count' }] });
      assert.equal(counted.status, 200, `${name}: ${counted.code}`);
      assert.deepEqual(
        new Map(counted.rows.map((r) => [r[0], r[1]])),
        new Map(big.map((c) => [c, perCity.get(c)])),
        `${name}: only groups of at least ${K}`,
      );
      const summed = await ask(socketPath, name, { groupBy: ['city'], aggregates: [{ fn: 'sum', column: 'qty' }] });
      assert.deepEqual(
        new Map(summed.rows.map((r) => [r[0], r[1]])),
        new Map(big.map((c) => [c, sumQty(c)])),
        `${name}: a sum without count is filtered the same way`,
      );
      // No groupBy: the whole (filtered) table is one group.
      const tiny = await ask(socketPath, name, {
        where: [{ column: 'id', op: '<', value: K }],
        aggregates: [{ fn: 'sum', column: 'qty' }],
      });
      assert.deepEqual(tiny.rows, [], `${name}: ${K - 1} rows are under k`);
      const enough = await ask(socketPath, name, {
        where: [{ column: 'id', op: '<=', value: K }],
        aggregates: [{ fn: 'count' }],
      });
      assert.deepEqual(enough.rows, [[K]]);
      // Filtering on a protected column is allowed (it stays inside).
      const filtered = await ask(socketPath, name, {
        where: [{ column: 'note', op: 'is null' }],
        aggregates: [{ fn: 'count' }],
      });
      assert.deepEqual(filtered.rows, [[rows.filter((r) => r.note === null).length]]);
      // min and max are allowed here because a minimum group size is set.
      const extremes = await ask(socketPath, name, {
        groupBy: ['store'],
        aggregates: [{ fn: 'max', column: 'qty' }],
        orderBy: [{ column: 'store' }],
      });
      assert.equal(extremes.status, 200);
      assert.equal(extremes.rows.length, 4);
    }
  });

  it('never projects a neverLeave column: not as a column, a group key, an aggregate, an alias or an ordering', async () => {
    const attempts: Array<{ body: unknown; code: string }> = [
      { body: { groupBy: ['note'], aggregates: [{ fn: 'count' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      { body: { aggregates: [{ fn: 'max', column: 'note' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      { body: { aggregates: [{ fn: 'min', column: 'note', as: 'harmless' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      // Policy names compare without case: AMOUNT protects amount.
      { body: { aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      { body: { aggregates: [{ fn: 'avg', column: 'amount' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      { body: { aggregates: [{ fn: 'count', as: 'note' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      { body: { aggregates: [{ fn: 'count', column: 'qty', as: 'Amount' }] }, code: 'INSITU_POLICY_COLUMN_PROTECTED' },
      // Expressions are not part of the language: they are not columns at all.
      { body: { aggregates: [{ fn: 'max', column: 'upper(note)' }] }, code: 'INSITU_DATA_QUERY_INVALID' },
      { body: { aggregates: [{ fn: 'max', column: 'note || id' }] }, code: 'INSITU_DATA_QUERY_INVALID' },
      { body: { groupBy: ['"note"'], aggregates: [{ fn: 'count' }] }, code: 'INSITU_DATA_QUERY_INVALID' },
      { body: { aggregates: [{ fn: 'max', column: 'note', sql: 'note' }] }, code: 'INSITU_DATA_QUERY_INVALID' },
    ];
    for (const name of strict)
      for (const { body, code } of attempts) {
        const answer = await ask(socketPath, name, body);
        assert.equal(
          answer.status,
          code === 'INSITU_DATA_QUERY_INVALID' ? 400 : 403,
          `${name} ${JSON.stringify(body)}`,
        );
        assert.equal(answer.code, code, `${name} ${JSON.stringify(body)}`);
      }
    // Count of a protected column only says how many are not null, like a filter.
    const counted = await ask(socketPath, 'strict_sqlite', { aggregates: [{ fn: 'count', column: 'note' }] });
    assert.deepEqual(counted.rows, [[rows.filter((r) => r.note !== null).length]]);

    // Without aggregatesOnly: rows leave, the protected column does not.
    const plain = await ask(socketPath, 'open_sales', { limit: 2 });
    assert.ok(
      plain.columns && !plain.columns.includes('note') && plain.columns.includes('city'),
      String(plain.columns),
    );
    for (const body of [
      { columns: ['id', 'note'] },
      { columns: ['id'], orderBy: [{ column: 'note' }], limit: 1 },
      { columns: ['id'], orderBy: [{ column: 'note', direction: 'desc' }] },
    ]) {
      const answer = await ask(socketPath, 'open_sales', body);
      assert.equal(answer.code, 'INSITU_POLICY_COLUMN_PROTECTED', JSON.stringify(body));
    }
  });

  it('cuts answers at maxRowsPerAnswer and says so', async () => {
    const all = await ask(socketPath, 'open_sales', { columns: ['id'] });
    assert.equal(all.rows.length, 5);
    assert.deepEqual(all.end, { rows: 5, truncated: true });
    const three = await ask(socketPath, 'open_sales', { columns: ['id'], limit: 3 });
    assert.deepEqual(three.end, { rows: 3, truncated: false });
  });

  it('takes the stricter policy when the platform carries one: it can tighten, never loosen', async () => {
    try {
      // Tighten: fewer rows, a larger k, one more protected column.
      platform.set('strict_sqlite', { maxRowsPerAnswer: 1, minGroupSize: 8, neverLeave: ['store'] });
      const listed = await listDatasets({ socketPath });
      assert.deepEqual(listed.find((d) => d.name === 'strict_sqlite')?.policy, {
        aggregatesOnly: true,
        minGroupSize: 8,
        neverLeave: ['note', 'AMOUNT', 'store'],
        maxRowsPerAnswer: 1,
      });
      const byStore = await ask(socketPath, 'strict_sqlite', { groupBy: ['store'], aggregates: [{ fn: 'count' }] });
      assert.equal(byStore.code, 'INSITU_POLICY_COLUMN_PROTECTED');
      // Cities have 6 or 7 rows: at k = 8 none is left.
      const byCity = await ask(socketPath, 'strict_sqlite', { groupBy: ['city'], aggregates: [{ fn: 'count' }] });
      assert.equal(byCity.status, 200);
      assert.deepEqual(byCity.rows, []);
      // "returned" has three groups of 12 and more: one row is let out, marked truncated.
      const byReturned = await ask(socketPath, 'strict_sqlite', {
        groupBy: ['returned'],
        aggregates: [{ fn: 'count', as: 'n' }],
        orderBy: [{ column: 'n', direction: 'desc' }],
      });
      assert.deepEqual(byReturned.rows, [[false, rows.filter((r) => r.returned === false).length]]);
      assert.deepEqual(byReturned.end, { rows: 1, truncated: true });

      // Loosen: every field says "less"; the agent's config still holds.
      platform.set('strict_sqlite', { aggregatesOnly: false, minGroupSize: 2, neverLeave: [], maxRowsPerAnswer: 1e9 });
      const rowsRead = await ask(socketPath, 'strict_sqlite', { columns: ['id'] });
      assert.equal(rowsRead.code, 'INSITU_POLICY_AGGREGATES_ONLY');
      const note = await ask(socketPath, 'strict_sqlite', { groupBy: ['note'], aggregates: [{ fn: 'count' }] });
      assert.equal(note.code, 'INSITU_POLICY_COLUMN_PROTECTED');
      const small = await ask(socketPath, 'strict_sqlite', {
        where: [{ column: 'id', op: '<=', value: 3 }],
        aggregates: [{ fn: 'count' }],
      });
      assert.deepEqual(small.rows, [], 'k stays 7');
      // A platform policy on a dataset without one in the config applies too.
      platform.set('open_sales', { aggregatesOnly: true });
      assert.equal((await ask(socketPath, 'open_sales', { columns: ['id'] })).code, 'INSITU_POLICY_AGGREGATES_ONLY');
    } finally {
      platform.clear();
    }
  });

  it('adds Laplace noise to counts and bounded sums, charges epsilon per caller and refuses once it is spent', async () => {
    const truth = rows.filter((r) => r.store === 'north').length;
    const refused = [
      { body: { columns: ['id'] }, code: 'INSITU_POLICY_NOISE_UNSUPPORTED' },
      { body: { aggregates: [{ fn: 'avg', column: 'qty' }] }, code: 'INSITU_POLICY_NOISE_UNSUPPORTED' },
      { body: { aggregates: [{ fn: 'max', column: 'qty' }] }, code: 'INSITU_POLICY_NOISE_UNSUPPORTED' },
      { body: { aggregates: [{ fn: 'sum', column: 'price' }] }, code: 'INSITU_POLICY_NOISE_UNSUPPORTED' },
      {
        body: { groupBy: ['store'], aggregates: [{ fn: 'count', as: 'n' }], orderBy: [{ column: 'n' }] },
        code: 'INSITU_POLICY_NOISE_UNSUPPORTED',
      },
    ];
    for (const { body, code } of refused)
      assert.equal((await ask(socketPath, 'noisy_sales', body)).code, code, JSON.stringify(body));

    const counts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await ask(socketPath, 'noisy_sales', {
        groupBy: ['store'],
        aggregates: [{ fn: 'count' }, { fn: 'sum', column: 'qty' }],
        orderBy: [{ column: 'store' }],
      });
      assert.equal(answer.status, 200, answer.code);
      assert.equal(answer.rows.length, 4);
      for (const row of answer.rows) {
        assert.ok(Number.isInteger(row[1]) && (row[1] as number) >= 0, `a noised count is a count: ${row[1]}`);
        assert.ok(Number.isInteger(row[2]), 'a noised integer sum stays an integer');
      }
      counts.push(answer.rows.find((r) => r[0] === 'north')?.[1] as number);
    }
    // Scale 4 (two aggregates share epsilon 0.5): four exact answers in a row would be a ~1e-3 event at most.
    assert.ok(
      counts.some((c) => c !== truth),
      `counts ${counts.join(',')} all equal the truth ${truth}`,
    );
    await assert.rejects(
      readDataset('noisy_sales', { socketPath, aggregates: [{ fn: 'count' }] }).next(),
      refusedWith('INSITU_POLICY_BUDGET_SPENT'),
    );
    // Another caller has its own budget; the spent one is kept on disk.
    assert.equal((await ask(otherSocket, 'noisy_sales', { aggregates: [{ fn: 'count' }] })).status, 200);
    const reread = new PrivacyBudget(budgetFile);
    assert.equal(reread.spentBy('dep-a', 'noisy_sales'), 2);
    assert.equal(reread.spentBy('dep-b', 'noisy_sales'), 0.5);
    await assert.rejects(reread.charge('dep-a', 'noisy_sales', 0.5, 2), /budget/);
  });
});
