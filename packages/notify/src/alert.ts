/** How bad it is. */
export type Severity = 'info' | 'warning' | 'critical';

/** What a component reports: a condition of a cluster, optionally about one subject (a member, a node). */
export interface AlertInput {
  /** The cluster (or platform) the alert is about, e.g. `platform-db`. */
  cluster: string;
  /** A stable machine name of the condition, e.g. `replica-sql-error`. Alerts are grouped by cluster and condition. */
  condition: string;
  /** What the condition is about within the cluster, e.g. a member name; part of the dedup key. */
  subject?: string;
  severity: Severity;
  /** One line for a human. */
  summary: string;
  /** Structured facts (error text, GTIDs, positions); shown in the message, never secrets. */
  details?: Record<string, unknown>;
}

/**
 * `firing`: new; `repeat`: still firing after the repeat interval; `resolved`: the condition
 * cleared; `notice`: a one-off event (`Notifier.event()`, e.g. a failover done) that opens
 * nothing and is never resolved.
 */
export type AlertState = 'firing' | 'repeat' | 'resolved' | 'notice';

/** One alert inside a message. */
export interface AlertItem {
  /** `cluster/condition/subject`: equal keys are the same alert (deduplicated). */
  key: string;
  cluster: string;
  condition: string;
  subject: string;
  severity: Severity;
  state: AlertState;
  summary: string;
  details: Record<string, unknown>;
  firstSeenAt: string;
  lastSeenAt: string;
  /** How many times it was raised since it started firing. */
  count: number;
  resolvedAt?: string;
}

/** What is delivered: the alerts of one cluster and condition collected during the group wait. */
export interface AlertMessage {
  /** Unique per message; receivers can use it to drop a retried duplicate. */
  id: string;
  kind: 'insitu.alert';
  cluster: string;
  condition: string;
  /**
   * `firing` when any alert in it fires (new or repeated), `resolved` when all of them
   * cleared, `notice` when it holds one-off notices only.
   */
  status: 'firing' | 'resolved' | 'notice';
  /** One line: what a mail subject or a chat message starts with. */
  title: string;
  alerts: AlertItem[];
  sentAt: string;
}

/** The dedup key of an alert. */
export function alertKey(alert: Pick<AlertInput, 'cluster' | 'condition' | 'subject'>): string {
  return `${alert.cluster}/${alert.condition}/${alert.subject ?? ''}`;
}

/** The group key: alerts with equal keys travel in one message. */
export function groupKey(alert: Pick<AlertInput, 'cluster' | 'condition'>): string {
  return `${alert.cluster}/${alert.condition}`;
}

function titleOf(status: AlertMessage['status'], items: readonly AlertItem[]): string {
  const [first] = items;
  if (first === undefined) return '';
  const more = items.length > 1 ? ` (+${items.length - 1} more)` : '';
  const word =
    status === 'resolved'
      ? 'RESOLVED'
      : first.severity === 'critical'
        ? 'CRITICAL'
        : first.severity === 'warning'
          ? 'WARNING'
          : 'INFO';
  return `[insitu] ${word} ${first.cluster}/${first.condition}: ${first.summary}${more}`;
}

/** Assemble a message from the items of one group. */
export function buildMessage(id: string, items: readonly AlertItem[], sentAt: Date): AlertMessage {
  const [first] = items;
  if (first === undefined) throw new Error('a message needs at least one alert');
  const status = items.some((item) => item.state === 'firing' || item.state === 'repeat')
    ? 'firing'
    : items.some((item) => item.state === 'notice')
      ? 'notice'
      : 'resolved';
  // Firing alerts first, the worst first: the title names the most urgent one.
  const rank = (item: AlertItem) =>
    item.state === 'resolved' ? 3 : item.severity === 'critical' ? 0 : item.severity === 'warning' ? 1 : 2;
  const ordered = [...items].sort((a, b) => rank(a) - rank(b) || a.subject.localeCompare(b.subject));
  return {
    id,
    kind: 'insitu.alert',
    cluster: first.cluster,
    condition: first.condition,
    status,
    title: titleOf(status, ordered),
    alerts: ordered,
    sentAt: sentAt.toISOString(),
  };
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Plain-text rendering for mail bodies and logs. */
export function renderText(message: AlertMessage): string {
  const lines = [message.title, ''];
  for (const item of message.alerts) {
    const subject = item.subject ? ` ${item.subject}` : '';
    lines.push(`- ${item.state.toUpperCase()} ${item.severity}${subject}: ${item.summary}`);
    lines.push(
      `  first seen ${item.firstSeenAt}, last seen ${item.lastSeenAt}, raised ${item.count} time(s)${item.resolvedAt ? `, resolved ${item.resolvedAt}` : ''}`,
    );
    for (const [key, value] of Object.entries(item.details)) lines.push(`  ${key}: ${formatValue(value)}`);
  }
  lines.push(
    '',
    `cluster ${message.cluster}, condition ${message.condition}, message ${message.id}, sent ${message.sentAt}`,
  );
  return `${lines.join('\n')}\n`;
}
