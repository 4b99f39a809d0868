import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { MissingCommandError } from './missing-command-error.js';

const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const POSTGRES_ROOT = '/usr/lib/postgresql';

/** Highest PostgreSQL major first, so a machine with two majors picks the newest. */
async function postgresBinDirs(): Promise<string[]> {
  let versions: string[];
  try {
    versions = await readdir(POSTGRES_ROOT);
  } catch {
    return [];
  }
  return versions
    .filter((name) => /^\d+(\.\d+)?$/.test(name))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    .map((version) => join(POSTGRES_ROOT, version, 'bin'));
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directories searched for commands: PATH, then sbin directories, then PostgreSQL's. */
export async function commandSearchPath(): Promise<string[]> {
  const fromEnv = (process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir.startsWith('/'));
  return [...new Set([...fromEnv, ...EXTRA_DIRS, ...(await postgresBinDirs())])];
}

/**
 * Absolute path of `command`, or `undefined` when it is not installed. Internal: tests
 * use {@link requireCommand}, which explains how to install what is missing.
 */
export async function findCommand(command: string): Promise<string | undefined> {
  for (const dir of await commandSearchPath()) {
    const candidate = join(dir, command);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Resolve the absolute path of a system binary, searching PATH plus `/usr/sbin`, `/sbin`
 * and `/usr/lib/postgresql/<version>/bin` (newest version first).
 *
 * @throws {MissingCommandError} naming the Debian package and `node scripts/test-deps.mjs`.
 * @example
 * const mariadbd = await requireCommand('mariadbd', 'mariadb-server'); // '/usr/sbin/mariadbd'
 */
export async function requireCommand(command: string, debianPackage: string): Promise<string> {
  if (command.includes('/')) throw new Error(`requireCommand expects a bare command name, got ${command}`);
  const found = await findCommand(command);
  if (found !== undefined) return found;
  throw new MissingCommandError(command, debianPackage, await commandSearchPath());
}
