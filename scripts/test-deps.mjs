#!/usr/bin/env node
// Checks that the system binaries the tests start for real are installed (MariaDB, etcd,
// PostgreSQL, bubblewrap, iproute2, HAProxy, Chromium). As root, installs the missing Debian packages; as
// anyone else, says what to install and exits 1. Fast and silent but for one line when
// everything is there, so `npm test` can run it every time. No dependencies.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** `where: 'postgres'` means /usr/lib/postgresql/<version>/bin only, as Debian installs them. */
const REQUIRED = [
  { command: 'mariadbd', debianPackage: 'mariadb-server' },
  { command: 'mariadb-install-db', debianPackage: 'mariadb-server' },
  { command: 'mariadb', debianPackage: 'mariadb-client' },
  { command: 'etcd', debianPackage: 'etcd-server' },
  { command: 'etcdctl', debianPackage: 'etcd-client' },
  { command: 'bwrap', debianPackage: 'bubblewrap' },
  { command: 'ip', debianPackage: 'iproute2' },
  { command: 'setpriv', debianPackage: 'util-linux' },
  { command: 'prlimit', debianPackage: 'util-linux' },
  { command: 'python3', debianPackage: 'python3' },
  { command: 'initdb', debianPackage: 'postgresql', where: 'postgres' },
  { command: 'postgres', debianPackage: 'postgresql', where: 'postgres' },
  { command: 'psql', debianPackage: 'postgresql-client' },
  { command: 'haproxy', debianPackage: 'haproxy' },
  { command: 'chromium', debianPackage: 'chromium' },
];

const POSTGRES_ROOT = '/usr/lib/postgresql';

function postgresBinDirs() {
  try {
    return readdirSync(POSTGRES_ROOT).map((version) => join(POSTGRES_ROOT, version, 'bin'));
  } catch {
    return [];
  }
}

function searchPath() {
  const fromEnv = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir.startsWith('/'));
  return [...new Set([...fromEnv, '/usr/local/sbin', '/usr/sbin', '/sbin', ...postgresBinDirs()])];
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function missingRequirements() {
  const general = searchPath();
  const postgres = postgresBinDirs();
  return REQUIRED.filter(({ command, where }) => {
    const dirs = where === 'postgres' ? postgres : general;
    return !dirs.some((dir) => isExecutable(join(dir, command)));
  });
}

function packagesOf(requirements) {
  return [...new Set(requirements.map((requirement) => requirement.debianPackage))];
}

function aptGet(args) {
  const result = spawnSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error) process.stderr.write(`test-deps: apt-get could not run: ${result.error.message}\n`);
  return result.status === 0;
}

let missing = missingRequirements();
if (missing.length > 0) {
  const packages = packagesOf(missing);
  const commands = missing.map((requirement) => requirement.command).join(', ');
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `test-deps: missing ${commands}\n` +
        `test-deps: install with: sudo apt-get install -y ${packages.join(' ')}\n` +
        '           (or run `node scripts/test-deps.mjs` as root)\n',
    );
    process.exit(1);
  }
  process.stdout.write(`test-deps: missing ${commands}; installing ${packages.join(' ')}\n`);
  // The package lists are only refreshed when the install fails: usually they are fresh enough.
  if (!aptGet(['install', '-y', ...packages])) {
    aptGet(['update']);
    aptGet(['install', '-y', ...packages]);
  }
  missing = missingRequirements();
  if (missing.length > 0) {
    process.stderr.write(
      `test-deps: still missing ${missing.map((requirement) => requirement.command).join(', ')} ` +
        `after apt-get install -y ${packagesOf(missing).join(' ')}\n`,
    );
    process.exit(1);
  }
}
process.stdout.write('test-deps: all present\n');
