import { frontUrl, type Bed } from './bed.js';

/** Calls of one scenario key per agent that answered them, as the platform's audit log recorded them. */
export interface AgentSpread {
  /** Agent name → audit records of 2xx calls it answered (the application runs under it). */
  perAgent: Record<string, number>;
  /** Audit records of the key without an agent (answered by the platform: no route, limits). */
  noAgent: number;
  /** Share of the busiest agent among the calls that reached an agent (0.5 = even over two). */
  maxShare: number | null;
}

interface AuditItem {
  seq: number;
  ts: string;
  keyId: string | null;
  agentId: string | null;
  status: number;
}

async function get<T>(token: string, path: string): Promise<T> {
  const response = await fetch(`${frontUrl}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json()) as T;
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

/**
 * Which agent answered each call of a scenario: the service application cannot tell which
 * agent runs it, but the audit log records the agent per call. Reads the service's audit
 * records newest first (pages of 1000) back to `since` and counts the scenario key's 2xx
 * calls per agent name.
 */
export async function agentSpread(bed: Bed, keyId: string, since: number): Promise<AgentSpread> {
  const agents = await get<{ items: Array<{ id: string; name: string }> }>(bed.adminToken, '/api/v1/agents?limit=100');
  const names = new Map(agents.items.map((a) => [a.id, a.name]));
  const perAgent: Record<string, number> = {};
  let noAgent = 0;
  let before: number | undefined;
  for (;;) {
    // The developer's token: its organisation owns the service and made the calls.
    const page = await get<{ items: AuditItem[]; nextBefore?: number }>(
      bed.devToken,
      `/api/v1/audit?service=${encodeURIComponent(bed.service)}&limit=1000${before === undefined ? '' : `&before=${before}`}`,
    );
    for (const item of page.items) {
      if (item.keyId !== keyId) continue;
      if (item.agentId === null) noAgent++;
      else if (item.status >= 200 && item.status < 300) {
        const name = names.get(item.agentId) ?? item.agentId;
        perAgent[name] = (perAgent[name] ?? 0) + 1;
      }
    }
    const oldest = page.items.at(-1);
    if (page.nextBefore === undefined || oldest === undefined || Date.parse(oldest.ts) < since) break;
    before = page.nextBefore;
  }
  const counts = Object.values(perAgent);
  const total = counts.reduce((a, b) => a + b, 0);
  return { perAgent, noAgent, maxShare: total === 0 ? null : Math.max(...counts) / total };
}

/** `hospital-a 51 % · hospital-b 49 %` (of the 2xx calls that reached an agent). */
export function formatSpread(spread: AgentSpread | null): string {
  if (spread === null) return '–';
  const total = Object.values(spread.perAgent).reduce((a, b) => a + b, 0);
  if (total === 0) return 'none';
  return Object.entries(spread.perAgent)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, n]) => `${name} ${n} (${Math.round((n / total) * 100)} %)`)
    .join(' · ');
}
