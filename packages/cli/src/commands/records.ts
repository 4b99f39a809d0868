import { ApiClient, type RemoteOptions } from '../api-client.js';
import { line, printItems, untilAborted, type CliIo } from '../io.js';
import { sleep } from '@insitu/core';

type Json = { json?: boolean };

/** `insitu usage [--service S] [--key K] [--by key|service] [--hourly] [--since ISO]`: metered calls per period. */
export async function runUsage(
  options: RemoteOptions &
    Json & { service?: string; key?: string; by?: 'key' | 'service'; hourly?: boolean; since?: string },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const query = new URLSearchParams({ granularity: options.hourly ? 'hour' : 'day' });
  if (options.service) query.set('service', options.service);
  if (options.key) query.set('key', options.key);
  if (options.by) query.set('groupBy', options.by);
  if (options.since) query.set('from', options.since);
  const usage = await api.request<{
    items: Array<{
      period: string;
      keyId?: string;
      serviceId?: string;
      calls: number;
      errors: number;
      bytesIn: number;
      bytesOut: number;
      avgDurationMs: number;
      p50Ms?: number;
      p99Ms?: number;
    }>;
  }>('GET', `/api/v1/usage?${query.toString()}`);
  const items = usage.items.filter((i) => i.calls > 0);
  printItems(
    io,
    options.json,
    options.json ? usage.items : items,
    {
      period: (i) => i.period,
      ...(options.by === 'key' ? { key: (i: (typeof items)[number]) => i.keyId } : {}),
      ...(options.by === 'service' ? { service: (i: (typeof items)[number]) => i.serviceId } : {}),
      calls: (i) => i.calls,
      errors: (i) => i.errors,
      'bytes in': (i) => i.bytesIn,
      'bytes out': (i) => i.bytesOut,
      'avg ms': (i) => i.avgDurationMs,
      // Bucket upper bounds of the server's log-scale histogram: "≤ N ms".
      'p50 ms': (i) => (i.p50Ms === undefined ? '-' : `≤${i.p50Ms}`),
      'p99 ms': (i) => (i.p99Ms === undefined ? '-' : `≤${i.p99Ms}`),
    },
    'no calls in this period',
  );
}

/** `insitu usage --jobs [--version-id V] [--by org|provider|version] [--hourly] [--since ISO]`: metered jobs per period. */
export async function runJobUsage(
  options: RemoteOptions &
    Json & { version?: string; by?: 'org' | 'provider' | 'version'; hourly?: boolean; since?: string },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const query = new URLSearchParams({ granularity: options.hourly ? 'hour' : 'day' });
  if (options.version) query.set('version', options.version);
  if (options.by) query.set('groupBy', options.by);
  if (options.since) query.set('from', options.since);
  const usage = await api.request<{
    items: Array<{
      period: string;
      orgId?: string;
      providerId?: string;
      versionId?: string;
      runs: number;
      succeeded: number;
      failed: number;
      refused: number;
      cancelled: number;
      wallTimeMs: number;
      cpuTimeMs: number;
      cpuMeasuredRuns: number;
      resultFiles: number;
      resultBytes: number;
    }>;
  }>('GET', `/api/v1/usage/jobs?${query.toString()}`);
  type Item = (typeof usage.items)[number];
  printItems(
    io,
    options.json,
    usage.items,
    {
      period: (i) => i.period,
      ...(options.by === 'org' ? { org: (i: Item) => i.orgId } : {}),
      ...(options.by === 'provider' ? { provider: (i: Item) => i.providerId } : {}),
      ...(options.by === 'version' ? { version: (i: Item) => i.versionId } : {}),
      runs: (i) => i.runs,
      ok: (i) => i.succeeded,
      failed: (i) => i.failed,
      refused: (i) => i.refused,
      cancelled: (i) => i.cancelled,
      'wall s': (i) => Math.round(i.wallTimeMs / 100) / 10,
      // CPU time only of the runs whose agent could measure it (a cgroup): say how many.
      'cpu s': (i) =>
        `${Math.round(i.cpuTimeMs / 100) / 10}${i.cpuMeasuredRuns < i.runs ? ` (${i.cpuMeasuredRuns} measured)` : ''}`,
      'result files': (i) => i.resultFiles,
      'result bytes': (i) => i.resultBytes,
    },
    'no jobs ended in this period',
  );
}

interface AuditRecord {
  seq: number;
  ts: string;
  requestId: string;
  keyId: string;
  serviceName: string;
  version: string;
  method: string;
  status: number;
  errorCode: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

/** `insitu audit list [--service S] [--limit N]`: the newest call records first (never payloads). */
export async function runAuditList(
  options: RemoteOptions & Json & { service?: string; limit: number },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.service) query.set('service', options.service);
  const page = await api.request<{ items: AuditRecord[] }>('GET', `/api/v1/audit?${query.toString()}`);
  printItems(
    io,
    options.json,
    page.items,
    {
      seq: (r) => r.seq,
      time: (r) => r.ts,
      service: (r) => `${r.serviceName}@${r.version || '-'}`,
      method: (r) => r.method,
      status: (r) => r.status,
      error: (r) => r.errorCode,
      key: (r) => r.keyId,
      ms: (r) => r.durationMs,
      request: (r) => r.requestId,
    },
    'no audit records',
  );
}

interface PlatformEvent {
  seq: number;
  ts: string;
  kind: string;
  subject: string;
  message: string;
}

function printEvent(io: CliIo, json: boolean | undefined, event: PlatformEvent): void {
  if (json) line(io.stdout, JSON.stringify(event));
  else line(io.stdout, `${event.ts}  ${event.kind.padEnd(22)} ${event.subject}  ${event.message}`);
}

/**
 * `insitu events [--kind K] [--subject S] [--limit N] [--follow]`: what happened to your
 * organisations' things, oldest first; with `--follow`, new events as they come until Ctrl-C.
 * With --json, one JSON line per event.
 */
export async function runEvents(
  options: RemoteOptions &
    Json & { kind?: string; subject?: string; limit: number; follow?: boolean; intervalMs?: number },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const base: Record<string, string> = {};
  if (options.kind) base.kind = options.kind;
  if (options.subject) base.subject = options.subject;
  const fetchPage = async (limit: number) =>
    (
      await api.request<{ items: PlatformEvent[] }>(
        'GET',
        `/api/v1/events?${new URLSearchParams({ ...base, limit: String(limit) }).toString()}`,
      )
    ).items;
  const first = (await fetchPage(options.limit)).sort((a, b) => a.seq - b.seq);
  for (const event of first) printEvent(io, options.json, event);
  if (!options.follow) return;
  let last = first.at(-1)?.seq ?? 0;
  const stopped = untilAborted(io.signal).then(() => true);
  const signal = io.signal ?? new AbortController().signal;
  while (!signal.aborted) {
    // Newest first from the API: read pages back until the last one printed.
    const fresh = (await fetchPage(500)).filter((e) => e.seq > last).sort((a, b) => a.seq - b.seq);
    for (const event of fresh) printEvent(io, options.json, event);
    last = fresh.at(-1)?.seq ?? last;
    await Promise.race([sleep(options.intervalMs ?? 1000, signal), stopped]);
  }
}
