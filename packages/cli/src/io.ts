import type { Readable, Writable } from 'node:stream';

/** Where a command reads its environment and writes its output; tests pass their own. */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  /** What `--password-stdin` reads; process.stdin in the binary. */
  stdin?: Readable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborts long-running commands (`server`, `up`): Ctrl-C in the binary. */
  signal?: AbortSignal;
}

/** Fill in the process defaults for what the caller did not give. */
export function resolveIo(io: Partial<CliIo> = {}): CliIo {
  return {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    ...(io.signal ? { signal: io.signal } : {}),
  };
}

/** Write a line. */
export function line(stream: Writable, text = ''): void {
  stream.write(`${text}\n`);
}

/** Resolve when `signal` aborts (never, without a signal). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return new Promise(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Print items for people as aligned columns, or for scripts as one JSON line (`--json`).
 * `columns` maps a heading to how to read the cell.
 */
export function printItems<T>(
  io: CliIo,
  json: boolean | undefined,
  items: readonly T[],
  columns: Record<string, (item: T) => unknown>,
  empty = '(none)',
): void {
  if (json) {
    line(io.stdout, JSON.stringify(items));
    return;
  }
  if (items.length === 0) {
    line(io.stdout, empty);
    return;
  }
  const headings = Object.keys(columns);
  const rows = items.map((item) => headings.map((h) => cell(columns[h]?.(item))));
  const widths = headings.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  line(io.stdout, format(headings.map((h) => h.toUpperCase())));
  for (const row of rows) line(io.stdout, format(row));
}

function cell(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (Array.isArray(value)) return value.join(',') || '-';
  const text = typeof value === 'object' ? JSON.stringify(value) : `${value as string | number | boolean | bigint}`;
  return text.replace(/\s+/g, ' ');
}

/** Print one object: JSON with `--json`, else `key: value` lines. */
export function printObject(io: CliIo, json: boolean | undefined, value: Record<string, unknown>): void {
  if (json) {
    line(io.stdout, JSON.stringify(value));
    return;
  }
  for (const [key, v] of Object.entries(value))
    line(io.stdout, `${key}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`);
}
