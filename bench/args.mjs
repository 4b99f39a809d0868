// Command-line flags of the benchmark scripts: node's parseArgs, `--help`, and a clear
// message with the usage (exit 2) for an unknown flag or a value that is not what the
// flag takes, instead of a stack trace.
import { parseArgs } from 'node:util';

/**
 * @param {string} usage one line: how to run the script
 * @param {Record<string, { default?: string, kind: 'count' | 'natural' | 'list' | 'level' | 'dialect' | 'switch' | 'path', help: string }>} flags
 *   count: a positive integer; natural: 0 or a positive integer; list: any text (the script splits it); level: a pino level; dialect: sqlite | mysql | both; switch: on when given; path: any file path
 * @returns {Record<string, string | boolean | undefined>}
 */
export function benchArgs(usage, flags) {
  const lines = [
    `usage: ${usage}`,
    ...Object.entries(flags).map(
      ([name, f]) => `  --${name.padEnd(16)} ${f.help}${f.default !== undefined ? ` (default ${f.default})` : ''}`,
    ),
  ];
  const fail = (message) => {
    process.stderr.write(`${message}\n${lines.join('\n')}\n`);
    process.exit(2);
  };
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(
          Object.entries(flags).map(([name, f]) => [
            name,
            f.kind === 'switch' ? { type: 'boolean' } : { type: 'string', default: f.default },
          ]),
        ),
      },
      allowPositionals: false,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (parsed.values.help) {
    process.stdout.write(`${lines.join('\n')}\n`);
    process.exit(0);
  }
  const allowed = {
    level: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    dialect: ['sqlite', 'mysql', 'both'],
  };
  for (const [name, f] of Object.entries(flags)) {
    const value = parsed.values[name];
    if (value === undefined || f.kind === 'switch') continue;
    if (f.kind === 'count' && !/^[1-9][0-9]{0,8}$/.test(value))
      fail(`--${name} takes a positive integer, not "${value}"`);
    if (f.kind === 'natural' && !/^(0|[1-9][0-9]{0,8})$/.test(value))
      fail(`--${name} takes 0 or a positive integer, not "${value}"`);
    if (f.kind in allowed && !allowed[f.kind].includes(value))
      fail(`--${name} takes one of ${allowed[f.kind].join(', ')}, not "${value}"`);
  }
  return parsed.values;
}
