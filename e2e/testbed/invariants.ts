import { waitFor } from '@insitu/core';
import { runInsitu } from '../test/support.js';
import { frontUrl, ready, serverUrl, type Bed } from './bed.js';
import { MGMT } from './network.js';
import type { CallOutcome, WriteOutcome } from './workload.js';
import { CALL_DEADLINE_MS } from './workload.js';

/** Names of the members answering `read_only = 0` now (`@@read_only` asked on its own). */
export async function primaries(bed: Bed): Promise<string[]> {
  const writable: string[] = [];
  await Promise.all(
    [...bed.members].map(async ([name, member]) => {
      if (!member.running) return;
      try {
        if ((await member.query('SELECT @@read_only')).trim() === '0') writable.push(name);
      } catch {
        // not answering: not writable for a client either
      }
    }),
  );
  return writable.sort();
}

/** Samples the writable members every 200 ms until stopped; keeps every sample with two or more. */
export class PrimarySampler {
  samples = 0;
  doubles: Array<{ t: number; writable: string[] }> = [];
  private running = true;
  private loop: Promise<void>;

  constructor(private readonly bed: Bed) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const next = Date.now() + 200;
      const writable = await primaries(this.bed);
      this.samples++;
      if (writable.length > 1) this.doubles.push({ t: Date.now(), writable });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  evidence?: unknown;
}

/** Every call ended 2xx or with a coded INSITU_* error, within its deadline. */
export function checkCalls(calls: readonly CallOutcome[]): Check {
  const bad = calls.filter(
    (c) => !(c.status >= 200 && c.status < 300) && !(c.code?.startsWith('INSITU_') && c.ms <= CALL_DEADLINE_MS),
  );
  return {
    name: 'calls end 2xx or coded INSITU_* within the deadline',
    ok: bad.length === 0,
    detail: `${calls.length} calls, ${bad.length} uncoded or over the deadline`,
    ...(bad.length > 0 ? { evidence: bad.slice(0, 10) } : {}),
  };
}

/** Every acknowledged key is on every member once replication caught up. */
export async function checkWrites(bed: Bed, writes: readonly WriteOutcome[]): Promise<Check> {
  const acked = writes.filter((w) => w.acked).map((w) => w.name);
  const missing: Record<string, string[]> = {};
  for (const [name, member] of bed.members) {
    if (!member.running) continue;
    let present = new Set<string>();
    try {
      await waitFor(
        async () => {
          const rows = await member.query("SELECT name FROM api_keys WHERE name LIKE 'tb-%'");
          present = new Set(rows.split('\n').filter(Boolean));
          return acked.every((a) => present.has(a));
        },
        { timeoutMs: 20_000, intervalMs: 500, what: `acknowledged keys on ${name}` },
      );
    } catch {
      missing[name] = acked.filter((a) => !present.has(a));
    }
  }
  const lost = Object.values(missing).reduce((n, m) => n + m.length, 0);
  return {
    name: 'no acknowledged platform write lost (primary and every replica)',
    ok: lost === 0,
    detail: `${acked.length} keys acknowledged of ${writes.length} attempted; ${lost} missing`,
    ...(lost > 0 ? { evidence: Object.fromEntries(Object.entries(missing).map(([k, v]) => [k, v.slice(0, 20)])) } : {}),
  };
}

export function checkPrimaries(sampler: PrimarySampler): Check {
  return {
    name: 'never two writable MariaDB primaries (200 ms samples)',
    ok: sampler.doubles.length === 0,
    detail: `${sampler.samples} samples, ${sampler.doubles.length} with two or more writable`,
    ...(sampler.doubles.length > 0 ? { evidence: sampler.doubles.slice(0, 10) } : {}),
  };
}

export async function checkAudit(bed: Bed): Promise<Check> {
  const result = await runInsitu(['audit', 'verify', '--url', frontUrl, '--token', bed.adminToken]);
  return {
    name: 'audit chain verifies',
    ok: result.code === 0,
    detail: (result.stdout + result.stderr).trim().split('\n')[0] ?? '',
  };
}

/**
 * Converged: every server ready, exactly one writable member and every other one
 * replicating (IO and SQL threads running), every agent process up, a call through HAProxy
 * succeeds. Returns the time it took, or throws after `boundMs`.
 */
export async function waitConverged(bed: Bed, boundMs: number): Promise<number> {
  const start = Date.now();
  await waitFor(
    async () => {
      const serversReady = await Promise.all(MGMT.map((m) => ready(serverUrl(m))));
      if (!serversReady.every(Boolean)) throw new Error(`servers ready: ${serversReady.join(',')}`);
      const writable = await primaries(bed);
      if (writable.length !== 1) throw new Error(`writable members: ${writable.join(',') || 'none'}`);
      for (const [name, member] of bed.members) {
        if (writable.includes(name)) continue;
        if (!member.running) throw new Error(`${name} not running`);
        const [status] = await member.queryRows('SHOW SLAVE STATUS');
        if (status?.Slave_IO_Running !== 'Yes' || status.Slave_SQL_Running !== 'Yes')
          throw new Error(`${name} not replicating: ${status?.Last_IO_Error ?? ''} ${status?.Last_SQL_Error ?? ''}`);
      }
      const down = bed.agents.filter((a) => !a.proc.running).map((a) => a.name);
      if (down.length > 0) throw new Error(`agents down: ${down.join(',')}`);
      const response = await fetch(`${frontUrl}${bed.callPath}`, {
        headers: { authorization: `Bearer ${bed.key}` },
        signal: AbortSignal.timeout(3000),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`call through HAProxy: ${response.status}`);
      return true;
    },
    { timeoutMs: boundMs, intervalMs: 250, what: 'the bed to converge' },
  );
  return Date.now() - start;
}

/** The elections, in order, whose fencing token is not above the one before (or is not a number). */
function notIncreasing<T extends { token: string }>(ordered: readonly T[]): T[] {
  return ordered.filter((e, i) => {
    const previous = ordered[i - 1];
    if (previous === undefined) return false;
    try {
      return BigInt(e.token) <= BigInt(previous.token);
    } catch {
      return true;
    }
  });
}

/** Every dbmanager `elected` event seen so far in this run (events are kept only for a while). */
const elections = new Map<string, { id: string; at: string; manager: string; token: string }>();

/**
 * Never two acting leaders: the fencing tokens of the dbmanager's `elected` events, in the
 * order of the events, strictly increase (a leader that wakes up after being replaced
 * cannot publish with its old token: its writes are fenced). Events are read through
 * `GET /api/v1/cluster` (the newest 20) after every scenario and accumulated over the run.
 */
export async function checkFencing(bed: Bed): Promise<Check> {
  let events: Array<{ id?: string; at?: string; type?: string; message?: string; details?: { token?: unknown } }> = [];
  try {
    const response = await fetch(`${frontUrl}/api/v1/cluster`, {
      headers: { authorization: `Bearer ${bed.adminToken}` },
      signal: AbortSignal.timeout(5000),
    });
    const body = (await response.json()) as { database?: { events?: typeof events } };
    events = body.database?.events ?? [];
  } catch (error) {
    return { name: 'fencing tokens strictly increase (dbmanager elections)', ok: false, detail: String(error) };
  }
  for (const event of events) {
    if (event.type !== 'elected' || event.id === undefined) continue;
    const raw = event.details?.token;
    const token = typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'bigint' ? String(raw) : '';
    const manager = /manager (\S+) elected/.exec(event.message ?? '')?.[1] ?? '?';
    elections.set(event.id, { id: event.id, at: event.at ?? '', manager, token });
  }
  const operator = await checkOperatorFencing(bed);
  const ordered = [...elections.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const bad = notIncreasing(ordered);
  const dbOk = bad.length === 0 && ordered.length > 0;
  return {
    name: 'fencing tokens strictly increase (dbmanager and operator elections)',
    ok: dbOk && operator.ok,
    detail: `dbmanager: ${ordered.length} election(s) seen, tokens ${ordered.map((e) => `${e.token}@${e.manager}`).join(' < ')}; operator: ${operator.detail}`,
    ...(!dbOk || !operator.ok ? { evidence: { dbmanager: ordered, operator: operator.evidence } } : {}),
  };
}

/** Every operator `leader-elected` event seen so far in this run. */
const operatorElections = new Map<number, { seq: number; ts: string; node: string; token: string }>();

/**
 * The operator's leaders, the same way: its `leader-elected` events (copied by the leader
 * into the platform database, `GET /api/v1/events?kind=operator.leader-elected`) carry the
 * fencing token the leader writes with; in the order the events happened, the tokens
 * strictly increase. Events arrive in the database a few seconds late (the leader copies
 * them with its deep probes), so none seen yet is not a failure.
 */
async function checkOperatorFencing(bed: Bed): Promise<{ ok: boolean; detail: string; evidence?: unknown }> {
  let items: Array<{ seq?: number; ts?: string; data?: { node?: unknown; fencingToken?: unknown } }> = [];
  try {
    const response = await fetch(`${frontUrl}/api/v1/events?kind=operator.leader-elected&limit=200`, {
      headers: { authorization: `Bearer ${bed.adminToken}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) throw new Error(`answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    items = ((await response.json()) as { items?: typeof items }).items ?? [];
  } catch (error) {
    return { ok: false, detail: `the operator's events could not be read: ${String(error)}` };
  }
  for (const item of items) {
    if (item.seq === undefined) continue;
    const raw = item.data?.fencingToken;
    const token = typeof raw === 'string' || typeof raw === 'number' ? String(raw) : '';
    operatorElections.set(item.seq, {
      seq: item.seq,
      ts: item.ts ?? '',
      node: typeof item.data?.node === 'string' ? item.data.node : '?',
      token,
    });
  }
  // By the time the leader recorded them (events are copied in batches, so not by seq).
  const ordered = [...operatorElections.values()].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.seq - b.seq));
  const bad = notIncreasing(ordered);
  return {
    ok: bad.length === 0,
    detail: `${ordered.length} election(s) seen, tokens ${ordered.map((e) => `${e.token}@${e.node}`).join(' < ') || '(none yet)'}`,
    ...(bad.length > 0 ? { evidence: ordered } : {}),
  };
}

/** What the platform metered for one key: calls and errors over the last day. */
async function metered(bed: Bed, keyId: string): Promise<{ calls: number; errors: number }> {
  const response = await fetch(`${frontUrl}/api/v1/usage?granularity=hour&key=${keyId}`, {
    headers: { authorization: `Bearer ${bed.devToken}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json()) as { items?: Array<{ calls: number; errors: number }> };
  if (!response.ok) throw new Error(`usage: ${response.status} ${JSON.stringify(body)}`);
  return (body.items ?? []).reduce((sum, i) => ({ calls: sum.calls + i.calls, errors: sum.errors + i.errors }), {
    calls: 0,
    errors: 0,
  });
}

/** How often a server writes its metering and audit records (the default `audit.flushIntervalMs`). */
const RECORD_FLUSH_MS = 250;

/**
 * Metered calls equal the 2xx calls the client counted, for the scenario's own key. Two
 * tolerances, both stated in the detail: more may be metered by the calls whose answer the
 * client never saw (status 0: reset, timed out, cut at the stop); less by the 2xx calls that
 * ended within one flush interval (+100 ms) before a kill -9 of a server (`cuts`), whose
 * records were still in that server's batch. The client cannot tell which node answered, so
 * this bound counts the answers of every node in that window. Nothing else may be missing.
 * Records are flushed by every node every 250 ms: wait until the count stops growing.
 */
export async function checkMetering(
  bed: Bed,
  keyId: string,
  calls: readonly CallOutcome[],
  cuts: readonly number[] = [],
): Promise<Check> {
  const ok2xx = calls.filter((c) => c.status >= 200 && c.status < 300);
  const client2xx = ok2xx.length;
  const unseen = calls.filter((c) => c.status === 0).length;
  const atCut = ok2xx.filter((c) =>
    cuts.some((cut) => c.t + c.ms <= cut && c.t + c.ms >= cut - RECORD_FLUSH_MS - 100),
  ).length;
  let last = { calls: -1, errors: 0 };
  let usage = last;
  try {
    await waitFor(
      async () => {
        usage = await metered(bed, keyId);
        const settled = usage.calls === last.calls && usage.calls - usage.errors >= client2xx - atCut;
        last = usage;
        return settled;
      },
      { timeoutMs: 15_000, intervalMs: 1000, what: 'metering to settle' },
    );
  } catch {
    // compared below with what arrived
  }
  const meteredOk = usage.calls - usage.errors;
  const diff = meteredOk - client2xx;
  return {
    name: 'metered 2xx calls = 2xx calls the client counted (± answers the client never saw, − answers in the last flush before a server kill)',
    ok: diff >= -atCut && diff <= unseen,
    detail: `metered ${usage.calls} calls (${usage.errors} errors, ${meteredOk} ok), client counted ${client2xx} 2xx and ${unseen} unanswered; difference ${diff}; tolerated ${-atCut}..+${unseen}${cuts.length > 0 ? ` (${cuts.length} server kill(s); ${atCut} 2xx answers ended within ${RECORD_FLUSH_MS + 100} ms before one)` : ''}`,
  };
}

interface HookMessage {
  id: string;
  status: 'firing' | 'resolved';
  title: string;
  alerts: Array<{ key: string; state: 'firing' | 'repeat' | 'resolved' }>;
}

/** Alert keys firing at the end of the last scenario (an incident may span scenarios only if it never resolved). */
const openIncidents = new Set<string>();

/**
 * One alert and one resolved message per incident, at the webhook and at the SMTP sink:
 * per alert key the states (repeats aside) alternate firing → resolved, and none is left
 * firing after the settle (waits up to 30 s for the resolved messages). The SMTP sink got
 * the same messages (same firing and resolved counts by subject).
 */
export async function checkAlerts(bed: Bed, hookFrom: number, mailFrom: number): Promise<Check> {
  const problems: string[] = [];
  let firings = 0;
  let resolveds = 0;
  const analyse = () => {
    problems.length = 0;
    firings = 0;
    resolveds = 0;
    const open = new Set(openIncidents);
    const seen = new Set<string>();
    for (const hook of bed.hook.accepted.slice(hookFrom)) {
      const message = hook.body as HookMessage;
      if (typeof message !== 'object' || message === null || seen.has(message.id)) continue;
      seen.add(message.id);
      for (const item of message.alerts ?? []) {
        if (item.state === 'firing') {
          if (open.has(item.key)) problems.push(`${item.key} fired twice without a resolved between`);
          open.add(item.key);
          firings++;
        } else if (item.state === 'resolved') {
          if (!open.has(item.key)) problems.push(`${item.key} resolved without firing`);
          open.delete(item.key);
          resolveds++;
        }
      }
    }
    // Only incidents of this scenario count as unresolved; one left from an earlier scenario was reported there.
    for (const key of open) if (!openIncidents.has(key)) problems.push(`${key} still firing after the settle`);
    return { open, messages: seen.size };
  };
  let result = analyse();
  try {
    await waitFor(() => [...(result = analyse()).open].every((key) => openIncidents.has(key)), {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'every alert to resolve',
    });
  } catch {
    // reported below
  }
  result = analyse();
  openIncidents.clear();
  for (const key of result.open) openIncidents.add(key);
  const hookMessages = bed.hook.accepted.slice(hookFrom).map((h) => h.body as HookMessage);
  const mails = bed.smtp.mails.slice(mailFrom);
  const hookResolved = hookMessages.filter((m) => m.status === 'resolved').length;
  const mailResolved = mails.filter((m) => /\] RESOLVED /.test(m.subject)).length;
  if (mails.length !== hookMessages.length || mailResolved !== hookResolved)
    problems.push(
      `SMTP got ${mails.length} mails (${mailResolved} resolved), the webhook ${hookMessages.length} messages (${hookResolved} resolved)`,
    );
  return {
    name: 'one alert and one resolved message per incident (webhook and SMTP)',
    ok: problems.length === 0,
    detail: `${result.messages} webhook messages, ${mails.length} mails; ${firings} incident(s) fired, ${resolveds} resolved: ${
      [...new Set(hookMessages.flatMap((m) => (m.alerts ?? []).map((a) => a.key)))].join(', ') || 'none'
    }`,
    ...(problems.length > 0
      ? { evidence: { problems: problems.slice(0, 20), titles: hookMessages.map((m) => m.title) } }
      : {}),
  };
}
