import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, seededRandom } from '@insitu/core';
import { DataApiError, listDatasets, readDataset } from '@insitu/sdk';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import BetterSqlite3 from 'better-sqlite3';
import { DataApiServer, DatasetRegistry, likeMatcher, openSource, parseAgentConfig } from '../src/index.js';

/*
 * Issue 16, item 4: the CSV source turned LIKE into a backtracking regular expression on
 * the agent's main thread; `%a%a%a%a%a%a%a%a%a%a%a%a%b` on 30-character values stalled
 * an unrelated call for seconds and grew exponentially, and the query deadline could not
 * fire. LIKE is now matched without a regular expression in O(n·m), in a query worker.
 */
const logger = createLogger({ name: 'test', level: 'silent' });
const HOSTILE = '%a%a%a%a%a%a%a%a%a%a%a%a%b';

/** SQLite's own LIKE, made case-sensitive and given `\` as its escape: the reference. */
function sqliteLike(): (value: string, pattern: string) => boolean {
  const db = new BetterSqlite3(':memory:');
  db.pragma('case_sensitive_like = ON');
  const statement = db.prepare("SELECT ? LIKE ? ESCAPE '\\' AS m").pluck();
  return (value, pattern) => statement.get(value, pattern) === 1;
}

/** A CSV field, quoted. */
const field = (value: string) => `"${value.replace(/"/g, '""')}"`;

// (No empty string: an empty CSV field is null, so it cannot hold one; the random test covers empty values.)
const TRICKY = [
  'Berlin',
  'berlin',
  'BERLIN',
  'Zürich',
  'zürich',
  'a%b',
  'a_b',
  'a\\b',
  'ab',
  'aXb',
  'x😀y',
  'x\uE000y',
  '100%',
  '_',
  '%',
  'line\nbreak',
  'aaa',
  'a',
  'b',
  'Ørsted',
  '𝔘nicode',
  "O'Brien",
  'a😀😀b',
  'abab',
  'ba',
];
const PATTERNS = [
  '%',
  '',
  '_',
  '__',
  '___',
  'a%',
  '%a',
  '%a%',
  'a_b',
  'a\\_b',
  'a\\%b',
  '%\\%',
  '\\%',
  '\\_',
  'B%',
  'b%',
  '%erlin',
  '_erlin',
  'Z%',
  'z%',
  'x_y',
  'x%y',
  '%😀%',
  'a_b%',
  'a__b',
  '%b%b%',
  'a%a%a',
  'line_break',
  'line%',
  'a\\\\b',
  '%\\\\%',
  "O'%",
  '%n',
  '%a%b',
  'ab%ab',
  '%%',
  'a%%b',
  '__%__',
];

describe('LIKE on CSV sources: linear, off the main thread, same answers as SQLite', () => {
  let dir = '';
  let registry: DatasetRegistry;
  let api: DataApiServer | undefined;
  let socketPath = '';

  before(async () => {
    dir = await makeTempDir('insitu-agent-like-');
    writeFileSync(join(dir, 'words.csv'), `id,word\n${TRICKY.map((w, i) => `${i + 1},${field(w)}`).join('\n')}\n`);
    const db = new BetterSqlite3(join(dir, 'words.db'));
    db.exec('CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO words VALUES (?, ?)');
    TRICKY.forEach((w, i) => insert.run(i + 1, w));
    db.close();
    // The attack of the issue: 30-character values, a pattern with twelve "%a".
    writeFileSync(
      join(dir, 'hostile.csv'),
      `id,value\n${Array.from({ length: 4000 }, (_, i) => `${i},${'a'.repeat(29)}${i % 2 ? 'c' : 'a'}`).join('\n')}\n`,
    );
    // The matcher's own worst case (a long segment with "_" between two "%", on long values
    // it almost matches everywhere): seconds of CPU in total, far past the deadline below.
    writeFileSync(
      join(dir, 'heavy.csv'),
      `id,value\n${Array.from({ length: 12_000 }, (_, i) => `${i},${'a'.repeat(600)}`).join('\n')}\n`,
    );
    writeFileSync(join(dir, 'small.csv'), 'id,label\n1,one\n2,two\n');
    const config = parseAgentConfig(
      {
        sources: [
          { name: 'words-csv', kind: 'csv', files: 'words.csv' },
          { name: 'words-sqlite', kind: 'sqlite', path: 'words.db', datasets: { words: { name: 'words_sqlite' } } },
          { name: 'attack', kind: 'csv', files: 'h*.csv' },
          { name: 'other', kind: 'csv', files: 'small.csv' },
        ],
        limits: { queryTimeoutMs: 3000 },
      },
      { what: 't', baseDir: dir },
    );
    registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits)),
      logger,
    );
    await registry.refresh();
    api = new DataApiServer({ registry, declared: '*', limits: config.limits, logger });
    socketPath = join(dir, 'data.sock');
    await api.listen(socketPath);
  });

  after(async () => {
    await api?.close();
    await registry?.close();
    await removeDir(dir);
  });

  const ids = async (dataset: string, column: string, pattern: string): Promise<number[]> => {
    const out: number[] = [];
    for await (const row of readDataset(dataset, {
      socketPath,
      columns: ['id'],
      where: [{ column, op: 'like', value: pattern }],
      orderBy: 'id',
    }))
      out.push(Number(row.id));
    return out;
  };

  it('matches like SQLite (case-sensitive, "\\" escapes) on random patterns and values', () => {
    const reference = sqliteLike();
    const random = seededRandom(16);
    const alphabet = ['a', 'b', 'A', '%', '_', '\\', 'é', '😀', '\uE000'];
    const text = (max: number) =>
      Array.from(
        { length: Math.floor(random() * (max + 1)) },
        () => alphabet[Math.floor(random() * alphabet.length)] as string,
      ).join('');
    let compared = 0;
    for (let i = 0; i < 4000; i++) {
      const pattern = text(7);
      // SQLite's LIKE never matches a pattern ending in a lone escape; ours (and GLOB's, which the SQLite source uses) reads it as itself.
      if (/(?:^|[^\\])(?:\\\\)*\\$/.test(pattern)) continue;
      const value = text(8);
      assert.equal(
        likeMatcher(pattern)(value),
        reference(value, pattern),
        `${JSON.stringify(value)} LIKE ${JSON.stringify(pattern)}`,
      );
      compared++;
    }
    assert.ok(compared > 2000, `${compared} pairs compared`);
    assert.equal(likeMatcher('a\\')('a\\'), true, 'a trailing "\\" is itself');
  });

  it("gives the CSV source the same answers as the SQLite source and as SQLite's LIKE, over the data API", async () => {
    const reference = sqliteLike();
    for (const pattern of PATTERNS) {
      const expected = TRICKY.map((w, i) => (reference(w, pattern) ? i + 1 : 0)).filter((id) => id > 0);
      assert.deepEqual(await ids('words', 'word', pattern), expected, `CSV: word LIKE ${JSON.stringify(pattern)}`);
      assert.deepEqual(
        await ids('words_sqlite', 'word', pattern),
        expected,
        `SQLite source: word LIKE ${JSON.stringify(pattern)}`,
      );
    }
  });

  it('answers the hostile pattern of the issue on 30-character values, and an unrelated call completes meanwhile', async () => {
    const hostile = ids('hostile', 'value', HOSTILE);
    const unrelated = await listDatasets({ socketPath });
    assert.ok(unrelated.some((d) => d.name === 'small'));
    assert.deepEqual(await hostile, [], 'no value ends in "b"');
    assert.equal((await ids('hostile', 'value', '%a%a%a%a%a%a%a%a%a%a%a%a%c')).length, 2000);
  });

  it('runs a heavy LIKE off the main thread: an unrelated call completes while it runs, and its deadline stops it with a code', async () => {
    let ended = false;
    const heavy = ids('heavy', 'value', `%${'a_'.repeat(200)}b%`)
      .then(
        (rows) => ({ rows }),
        (error: unknown) => ({ error }),
      )
      .finally(() => (ended = true));
    const small: string[] = [];
    for await (const row of readDataset('small', { socketPath, orderBy: 'id' })) small.push(String(row.label));
    assert.deepEqual(small, ['one', 'two']);
    assert.equal(ended, false, 'the unrelated query was answered while the heavy one was still running');
    const outcome = await heavy;
    if ('error' in outcome)
      assert.ok(
        outcome.error instanceof DataApiError && outcome.error.code === 'INSITU_DATA_QUERY_TIMEOUT',
        String(outcome.error),
      );
    else assert.deepEqual(outcome.rows, []);
    // The worker that was stopped is replaced: the source answers again.
    assert.equal((await ids('hostile', 'value', '%c')).length, 2000);
  });

  it('refuses a LIKE pattern over 1000 characters', async () => {
    await assert.rejects(
      ids('words', 'word', 'a'.repeat(1001)),
      (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_INVALID',
    );
  });
});
