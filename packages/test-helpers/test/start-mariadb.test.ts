import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { requireCommand, startMariaDb, type MariaDbInstance } from '../src/index.js';
import { isGone } from '../src/process-tree.js';
import { runCommand } from '../src/run-command.js';

/** Log in over TCP the way code under test does: host, port, user and password. */
async function queryOverTcp(
  db: MariaDbInstance,
  password: string,
  sql: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const client = await requireCommand('mariadb', 'mariadb-client');
  return runCommand(client, [
    '--no-defaults',
    '--protocol=TCP',
    `--host=${db.host}`,
    `--port=${db.port}`,
    `--user=${db.user}`,
    `--password=${password}`,
    `--database=${db.database}`,
    '--batch',
    '--skip-column-names',
    '--execute',
    sql,
  ]);
}

describe('startMariaDb', () => {
  let db: MariaDbInstance;

  before(async () => {
    db = await startMariaDb({ serverId: 7, extraConfig: { max_connections: 42 } });
  });

  after(async () => {
    await db.stop();
  });

  it('runs a private server with the requested settings, never on a default port', async () => {
    assert.notEqual(db.port, 3306);
    assert.equal(db.host, '127.0.0.1');
    assert.equal((await db.query('SELECT @@server_id')).trim(), '7');
    assert.equal((await db.query('SELECT @@max_connections')).trim(), '42');
    assert.equal((await db.query('SELECT @@read_only')).trim(), '0');
    assert.equal((await db.query('SELECT @@gtid_strict_mode')).trim(), '1');
    assert.equal((await db.query('SELECT DATABASE()')).trim(), 'insitu_test');
    assert.equal(db.url, `mysql://root:${db.password}@127.0.0.1:${db.port}/insitu_test`);
  });

  it('accepts the password over TCP and refuses a wrong one', async () => {
    const ok = await queryOverTcp(db, db.password, 'SELECT CURRENT_USER()');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 'root@%');
    const wrong = await queryOverTcp(db, `${db.password}x`, 'SELECT 1');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /Access denied/);
  });

  it('keeps committed data across kill and start', async () => {
    await db.query('CREATE TABLE survivors (id INT PRIMARY KEY); INSERT INTO survivors VALUES (1), (2)');
    const oldPid = db.pid;
    assert.ok(oldPid !== undefined);
    await db.kill();
    assert.equal(db.running, false);
    assert.equal(db.pid, undefined);
    assert.ok(isGone(oldPid));
    await assert.rejects(db.query('SELECT 1'));
    await db.start();
    assert.equal(db.running, true);
    assert.notEqual(db.pid, oldPid);
    assert.equal((await db.query('SELECT COUNT(*) FROM survivors')).trim(), '2');
  });

  it('stop() ends the server and deletes its directory; a second stop is harmless', async () => {
    const other = await startMariaDb({ readOnly: true });
    const pid = other.pid;
    assert.ok(pid !== undefined);
    assert.equal((await other.query('SELECT @@read_only')).trim(), '1');
    await other.stop();
    assert.equal(other.running, false);
    await waitFor(() => isGone(pid), { what: 'mariadbd to be gone' });
    await assert.rejects(stat(dirname(other.dataDir)), { code: 'ENOENT' });
    await other.stop();
    await assert.rejects(other.start(), /stopped/);
  });
});
