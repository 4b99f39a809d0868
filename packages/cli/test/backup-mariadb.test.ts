import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { list as listTar } from 'tar';
import { openStore, parseDatabaseUrl, type AuditInput } from '@insitu/store';
import { makeTempDir, removeDir, startMariaDb, type MariaDbInstance } from '@insitu/test-helpers';
import { run } from './helpers.js';

/**
 * `insitu backup` / `insitu restore` of a MariaDB-backed platform, on a real MariaDB, with the
 * grants docs/operations.md names: the platform user owns its database, the backup user has
 * SELECT, SHOW VIEW and TRIGGER on it, the restore user owns the (empty) target database.
 */
const call = (n: number): AuditInput => ({
  ts: 1_700_000_000_000 + n,
  requestId: `req_${n}`,
  keyId: 'key_1',
  callerOrgId: 'org_caller',
  serviceId: 'svc_1',
  serviceOrgId: 'org_owner',
  serviceName: 'sales',
  version: '1.0.0',
  providerId: 'prv_1',
  agentId: 'agt_1',
  method: 'GET',
  status: n % 3 === 0 ? 500 : 200,
  errorCode: n % 3 === 0 ? 'INSITU_APP_FAILED' : '',
  bytesIn: n,
  bytesOut: 10 + n,
  durationMs: n * 7,
});

describe('insitu backup / restore of a MariaDB platform', () => {
  let dir = '';
  let db: MariaDbInstance | undefined;
  let url = (user: string, database: string) => `${user}@${database}`;

  before(async () => {
    dir = await makeTempDir('insitu-backup-mariadb-');
    db = await startMariaDb();
    const at = `${db.host}:${db.port}`;
    const passwords: Record<string, string> = {
      insitu: 'insitu-password',
      insitu_backup: 'backup-password',
      insitu_restore: 'restore-password',
    };
    url = (user, database) => `mysql://${user}:${passwords[user] ?? ''}@${at}/${database}`;
    // The grants block of docs/operations.md, executed as it stands, plus the platform's own user.
    const doc = await readFile(fileURLToPath(new URL('../../../../docs/operations.md', import.meta.url)), 'utf8');
    const grants = /```sql\n(-- grants for insitu backup and insitu restore\n[\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(grants, 'docs/operations.md shows the backup/restore grants');
    await db.query(`
      CREATE DATABASE insitu;
      CREATE USER 'insitu'@'%' IDENTIFIED BY 'insitu-password';
      GRANT ALL PRIVILEGES ON insitu.* TO 'insitu'@'%';
      ${grants}
    `);
  });
  after(async () => {
    await db?.stop();
    await removeDir(dir);
  });

  it('round-trips rows and the audit chain into a fresh database; refuses a non-empty one without --force', async () => {
    assert.ok(db);
    const source = join(dir, 'source');
    const init = await run([
      'init',
      '--data-dir',
      source,
      '--database-url',
      url('insitu', 'insitu'),
      '--admin-email',
      'root@example.test',
      '--json',
    ]);
    assert.equal(init.code, 0, init.stderr);
    const store = await openStore(parseDatabaseUrl(url('insitu', 'insitu')), { migrate: false });
    try {
      await store.transaction((tx) => tx.audit.append([1, 2, 3, 4, 5, 6, 7].map(call)));
    } finally {
      await store.close();
    }
    const before = await run(['audit', 'verify', '--data-dir', source, '--json']);
    assert.equal(before.code, 0, before.stdout + before.stderr);

    // Backup with the backup user's grants only (the environment overrides the config's URL).
    const file = join(dir, 'backup.tar.gz');
    const backupEnv = { INSITU_DATABASE_URL: url('insitu_backup', 'insitu') };
    const backup = await run(['backup', '--to', file, '--data-dir', source], backupEnv);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /dumping \d+ tables of insitu .*mariadb-dump --single-transaction/);
    assert.match(backup.stdout, /backed up platform\.sql, config\.yaml, tls, audit-anchor\.key of /);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const entries: string[] = [];
    await listTar({ file, onReadEntry: (entry) => void entries.push(entry.path) });
    assert.ok(
      entries.includes('platform.sql') && entries.includes('config.yaml') && entries.includes('insitu-backup.json'),
    );
    assert.ok(!entries.some((e) => e.includes('.cnf')), 'no client credentials in the backup');

    const jsonBackup = await run(['backup', '--to', join(dir, 'again.tgz'), '--data-dir', source, '--json'], backupEnv);
    assert.equal(jsonBackup.code, 0, jsonBackup.stderr);
    assert.equal(jsonBackup.stderr, '', '--json prints no progress');
    const manifest = JSON.parse(jsonBackup.stdout) as { database: string; files: string[]; bytes: number };
    assert.equal(manifest.database, 'mysql');
    assert.deepEqual(manifest.files, ['platform.sql', 'config.yaml', 'tls', 'audit-anchor.key']);

    // Restore into the fresh database.
    const target = join(dir, 'restored');
    const restoreArgs = [
      'restore',
      file,
      '--data-dir',
      target,
      '--database-url',
      url('insitu_restore', 'insitu_restored'),
    ];
    const restored = await run([...restoreArgs, '--json']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(JSON.parse(restored.stdout), {
      dataDir: target,
      restored: [`mysql://${db.host}:${db.port}/insitu_restored`, 'audit-anchor.key', 'config.yaml', 'tls'],
    });
    assert.match(await readFile(join(target, 'config.yaml'), 'utf8'), /insitu_restored/);

    const tables = (
      await db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'insitu' ORDER BY 1")
    )
      .split('\n')
      .filter(Boolean);
    assert.ok(tables.includes('audit_log'), tables.join(','));
    for (const table of tables) {
      const a = await db.query(`SELECT * FROM insitu.\`${table}\` ORDER BY 1`);
      const b = await db.query(`SELECT * FROM insitu_restored.\`${table}\` ORDER BY 1`);
      assert.equal(b, a, `table ${table} is equal after the round trip`);
    }
    assert.equal((await db.query('SELECT COUNT(*) FROM insitu_restored.audit_log')).trim(), '7');
    const verified = await run(['audit', 'verify', '--data-dir', target, '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

    // The database has tables now: a second restore (into another empty data dir) refuses without --force.
    const other = join(dir, 'other');
    const refused = await run([
      'restore',
      file,
      '--data-dir',
      other,
      '--database-url',
      url('insitu_restore', 'insitu_restored'),
      '--json',
    ]);
    assert.equal(refused.code, 1);
    assert.equal((JSON.parse(refused.stderr) as { error: { code: string } }).error.code, 'INSITU_ALREADY_INITIALISED');
    await db.query('CREATE TABLE insitu_restored.stray (id INT)');
    const forced = await run([...restoreArgs.map((a) => (a === target ? other : a)), '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /dropping the \d+ tables of .*insitu_restored \(--force\)/);
    assert.equal((await db.query('SELECT COUNT(*) FROM insitu_restored.audit_log')).trim(), '7');
    const again = await run(['audit', 'verify', '--data-dir', other, '--json']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('the backup user cannot restore: a failed load is a coded error, not a crash', async () => {
    assert.ok(db);
    const file = join(dir, 'backup.tar.gz');
    const out = await run([
      'restore',
      file,
      '--data-dir',
      join(dir, 'denied'),
      '--database-url',
      url('insitu_backup', 'insitu_restored'),
      '--json',
    ]);
    assert.equal(out.code, 1);
    assert.equal((JSON.parse(out.stderr) as { error: { code: string } }).error.code, 'INSITU_DATABASE_UNAVAILABLE');
  });
});
