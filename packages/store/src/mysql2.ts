import { createRequire } from 'node:module';
import type * as Mysql2Module from 'mysql2';

const requireModule = createRequire(import.meta.url);
let loaded: typeof Mysql2Module | undefined;

/**
 * The `mysql2` client, loaded when a MySQL/MariaDB store first needs a pool: a platform on
 * SQLite (and every command that imports this package) does without its ~80 modules.
 */
export function mysql2(): typeof Mysql2Module {
  return (loaded ??= requireModule('mysql2') as typeof Mysql2Module);
}
