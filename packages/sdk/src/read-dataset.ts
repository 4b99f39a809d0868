import { request, type IncomingMessage } from 'node:http';
import { DataApiError } from './data-api-error.js';
import type { DataColumn, DataQuery, DataValue, DatasetInfo, EndLine, OrderBy } from './data-query.js';

/** Where the data API listens: `socketPath`, else `INSITU_DATA_API` (set by the agent). */
export interface DataApiOptions {
  socketPath?: string;
  signal?: AbortSignal;
}

/** {@link readDataset}'s query: `orderBy` may also be `'col'` or `'-col'` (descending). */
export interface ReadOptions extends Omit<DataQuery, 'orderBy'>, DataApiOptions {
  orderBy?: Array<OrderBy | string> | string;
  /** Called once the answer is complete: how many rows, and whether the agent's row cap cut it. */
  onEnd?: (end: EndLine['end']) => void;
}

/** {@link readDataset} with `arrays: true` yields each row as an array in column order (faster). */
export interface ReadArraysOptions extends ReadOptions {
  arrays: true;
}

function socketOf(options: DataApiOptions): string {
  const socketPath = options.socketPath ?? process.env.INSITU_DATA_API;
  if (!socketPath)
    throw new DataApiError(
      'INSITU_DATA_SOURCE_UNAVAILABLE',
      'no data API: INSITU_DATA_API is not set (is this running under the Insitu agent?)',
      503,
    );
  return socketPath;
}

function call(method: string, path: string, body: unknown, options: DataApiOptions): Promise<IncomingMessage> {
  const socketPath = socketOf(options);
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        ...(options.signal ? { signal: options.signal } : {}),
      },
      resolve,
    );
    req.on('error', (error) =>
      reject(
        new DataApiError(
          'INSITU_DATA_SOURCE_UNAVAILABLE',
          `data API unreachable at ${socketPath}: ${error.message}`,
          503,
        ),
      ),
    );
    req.end(payload);
  });
}

async function readAll(response: IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk as string;
  return text;
}

async function failure(response: IncomingMessage): Promise<DataApiError> {
  const text = await readAll(response);
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code)
      return new DataApiError(body.error.code, body.error.message ?? body.error.code, response.statusCode ?? 500);
  } catch {
    // not JSON: fall through
  }
  return new DataApiError(
    'INSITU_INTERNAL',
    `data API answered ${response.statusCode}: ${text.slice(0, 200)}`,
    response.statusCode ?? 500,
  );
}

/** The datasets this application may read, with their columns. */
export async function listDatasets(options: DataApiOptions = {}): Promise<DatasetInfo[]> {
  const response = await call('GET', '/v1/datasets', undefined, options);
  if (response.statusCode !== 200) throw await failure(response);
  return (JSON.parse(await readAll(response)) as { datasets: DatasetInfo[] }).datasets;
}

function toQuery(options: ReadOptions): DataQuery {
  const { socketPath: _s, signal: _g, onEnd: _e, orderBy, ...rest } = options as ReadOptions & { arrays?: boolean };
  delete (rest as { arrays?: boolean }).arrays;
  const query: DataQuery = rest;
  if (orderBy !== undefined) {
    const list = Array.isArray(orderBy) ? orderBy : [orderBy];
    query.orderBy = list.map((o) =>
      typeof o === 'string' ? (o.startsWith('-') ? { column: o.slice(1), direction: 'desc' } : { column: o }) : o,
    );
  }
  return query;
}

/** The rows of a query as arrays, after the schema line; throws a {@link DataApiError} on an error line. */
async function* streamRows(
  name: string,
  options: ReadOptions,
  onSchema: (columns: DataColumn[]) => void,
): AsyncGenerator<DataValue[]> {
  const response = await call('POST', `/v1/datasets/${encodeURIComponent(name)}/query`, toQuery(options), options);
  if (response.statusCode !== 200) throw await failure(response);
  response.setEncoding('utf8');
  let pending = '';
  let ended = false;
  try {
    for await (const chunk of response) {
      pending += chunk as string;
      const last = pending.lastIndexOf('\n');
      if (last === -1) continue;
      const block = pending.slice(0, last);
      pending = pending.slice(last + 1);
      // Row lines are JSON arrays and JSON strings hold no raw newline, so a block of row
      // lines parses in one call as the elements of one array: much faster than line by line.
      if (block.charCodeAt(0) === 91 /* [ */ && !block.includes('\n{')) {
        yield* JSON.parse(`[${block.replaceAll('\n', ',')}]`) as DataValue[][];
        continue;
      }
      for (const line of block.split('\n')) {
        if (line === '') continue;
        if (line.charCodeAt(0) === 91 /* [ */) {
          yield JSON.parse(line) as DataValue[];
          continue;
        }
        const control = JSON.parse(line) as {
          columns?: DataColumn[];
          end?: EndLine['end'];
          error?: { code: string; message: string };
        };
        if (control.columns) onSchema(control.columns);
        else if (control.error) throw new DataApiError(control.error.code, control.error.message, 500);
        else if (control.end) {
          ended = true;
          options.onEnd?.(control.end);
        }
      }
    }
  } finally {
    if (!response.complete) response.destroy();
  }
  if (!ended) throw new DataApiError('INSITU_DATA_SOURCE_UNAVAILABLE', `the answer for ${name} ended early`, 502);
}

/**
 * Read a dataset through the agent's data API, as an async iterator of rows. The query
 * (projection, filters, ordering, limit/offset, group-by and aggregates) runs at the
 * source, next to the data; rows stream as they come.
 *
 * @example
 * for await (const row of readDataset('sales', { columns: ['store', 'amount'], where: [{ column: 'amount', op: '>', value: 100 }], orderBy: '-amount', limit: 10 })) {
 *   console.log(row.store, row.amount);
 * }
 * for await (const row of readDataset('sales', { groupBy: ['store'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }] })) { ... }
 */
export function readDataset(name: string, options: ReadArraysOptions): AsyncGenerator<DataValue[]>;
export function readDataset(name: string, options?: ReadOptions): AsyncGenerator<Record<string, DataValue>>;
export async function* readDataset(
  name: string,
  options: ReadOptions & { arrays?: boolean } = {},
): AsyncGenerator<DataValue[] | Record<string, DataValue>> {
  let names: string[] = [];
  const rows = streamRows(name, options, (columns) => {
    names = columns.map((c) => c.name);
  });
  if (options.arrays) {
    yield* rows;
    return;
  }
  for await (const values of rows) {
    const row: Record<string, DataValue> = {};
    for (let i = 0; i < names.length; i++) row[names[i] as string] = values[i] ?? null;
    yield row;
  }
}
