import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireCommand, startPostgres, type PostgresInstance } from '../src/index.js';
import { isGone } from '../src/process-tree.js';
import { runCommand } from '../src/run-command.js';

/** `psql URL -c SQL` over TCP, the way code under test connects. */
async function psqlOverTcp(url: string, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const psql = await requireCommand('psql', 'postgresql-client');
  return runCommand(psql, ['--no-psqlrc', '--tuples-only', '--no-align', '--dbname', url, '--command', sql]);
}

describe('startPostgres', () => {
  let pg: PostgresInstance;

  before(async () => {
    pg = await startPostgres();
  });

  after(async () => {
    await pg.stop();
  });

  it('answers SELECT 1 over TCP with the returned URL, never on the default port', async () => {
    assert.notEqual(pg.port, 5432);
    assert.equal(pg.url, `postgres://${pg.user}:${pg.password}@127.0.0.1:${pg.port}/insitu_test`);
    const result = await psqlOverTcp(pg.url, 'SELECT 1');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), '1');
    assert.equal((await pg.query('SELECT current_database()')).trim(), 'insitu_test');
    assert.equal((await pg.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).trim(), 't');
  });

  it('checks the password over TCP', async () => {
    const wrong = await psqlOverTcp(pg.url.replace(`:${pg.password}@`, ':wrong@'), 'SELECT 1');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /password authentication failed/);
  });

  it('runs the server as an unprivileged user even when the tests run as root', async () => {
    const pid = pg.pid;
    assert.ok(pid !== undefined);
    const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
    assert.notEqual(uid, '0');
  });

  it('keeps data across kill and start', async () => {
    await pg.query('CREATE TABLE survivors (id int PRIMARY KEY); INSERT INTO survivors VALUES (1), (2);');
    const oldPid = pg.pid;
    assert.ok(oldPid !== undefined);
    await pg.kill();
    assert.equal(pg.running, false);
    assert.ok(isGone(oldPid));
    await pg.start();
    assert.notEqual(pg.pid, oldPid);
    assert.equal((await pg.query('SELECT count(*) FROM survivors')).trim(), '2');
  });

  it('stop() deletes the data directory', async () => {
    const other = await startPostgres({ database: 'other_db', user: 'other_user' });
    assert.equal((await other.query('SELECT current_user')).trim(), 'other_user');
    const pid = other.pid;
    assert.ok(pid !== undefined);
    await other.stop();
    assert.ok(isGone(pid));
    await assert.rejects(stat(dirname(other.dataDir)), { code: 'ENOENT' });
  });
});
