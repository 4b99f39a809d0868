import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { trackDir } from './cleanup-registry.js';
import { requireCommand } from './require-command.js';
import { runChecked } from './run-command.js';
import { makeTempDir } from './temp-dir.js';

/** Shared by every instance of this process: install-db runs once, instances copy it. */
let template: Promise<string> | undefined;

async function createTemplate(): Promise<string> {
  const installDb = await requireCommand('mariadb-install-db', 'mariadb-server');
  const dir = await makeTempDir('insitu-mariadb-template-');
  trackDir(dir);
  const dataDir = join(dir, 'data');
  // A private tmpdir: with the shared /tmp, bootstraps of concurrent test processes failed
  // ("Could not remove temporary table '/tmp/#sql-temptable-…'", then "Unknown table 'mysql.tmp_proxies_priv'").
  const tmpDir = join(dir, 'tmp');
  await mkdir(tmpDir);
  await runChecked(
    installDb,
    [
      // First, so the machine's /etc/mysql configuration (log paths, user=mysql) is ignored.
      '--no-defaults',
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      `--datadir=${dataDir}`,
      `--tmpdir=${tmpDir}`,
      // 8 MiB instead of 96 MiB of redo log: copies are 26 MiB instead of 114 MiB.
      '--innodb-log-file-size=8M',
      '--innodb-buffer-pool-size=64M',
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
    ],
    { cwd: dir, timeoutMs: 120_000 },
  );
  return dataDir;
}

/**
 * The path of a freshly installed, never started MariaDB datadir to `cp -a` from.
 * Created on first use and cached for the life of the process: running install-db
 * concurrently into several dirs has produced "Access denied for root@localhost".
 */
export function mariaDbTemplate(): Promise<string> {
  if (template === undefined) {
    const created = createTemplate();
    template = created;
    created.catch(() => {
      if (template === created) template = undefined;
    });
  }
  return template;
}
