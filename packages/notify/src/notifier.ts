import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { Counter, InsituError, newId, sleep, type Logger, type Registry } from '@insitu/core';
import { alertKey, buildMessage, groupKey, type AlertInput, type AlertItem, type AlertMessage } from './alert.js';
import type { NotifyConfig } from './config.js';
import { emailTarget } from './email.js';
import { DeliveryError, type DeliveryTarget } from './target.js';
import { webhookTarget } from './webhook.js';

/** Retry policy of one delivery to one target. */
export interface RetryPolicy {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  targets: readonly DeliveryTarget[];
  /** Collect alerts of one group this long before sending; default 2000 ms. */
  groupWaitMs?: number;
  /** Send a still-firing alert again when it is raised this long after its last message; default 4 h. */
  repeatIntervalMs?: number;
  /**
   * After a group sent a message, its next message waits until this long after it
   * (Alertmanager's `group_interval`): new alerts and resolutions of a busy group are
   * batched instead of sent one by one. 0 (default): each batch waits `groupWaitMs` only.
   */
  groupIntervalMs?: number;
  /**
   * Consulted when a group's message is assembled: a muted alert (silenced, inhibited) is
   * left out. A muted firing alert stays active and unannounced, so it is sent by the first
   * raise after it is no longer muted; a muted resolution is dropped.
   */
  mute?: (item: AlertItem) => boolean;
  /**
   * Drop the resolution of an alert no message ever announced (raised and resolved within
   * the group wait, or while muted): one firing and one resolved message per incident,
   * never a lone resolved one. Default false (the resolution is sent).
   */
  dropUnannouncedResolutions?: boolean;
  /** See {@link Notifier.setCommit}. */
  commit?: CommitHook;
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  /** Counters `insitu_notify_messages_total` and `insitu_notify_suppressed_total` go here. */
  registry?: Registry;
  now?: () => number;
}

/**
 * Called with each message before it is delivered, while {@link Notifier.snapshot} already shows
 * it as sent (its firing alerts announced, its resolved ones gone). The message is delivered when
 * the promise resolves; a rejection drops it and puts the notifier's state back as it was.
 */
export type CommitHook = (message: AlertMessage) => Promise<void>;

/** What a delivery attempt ended with, as emitted by the notifier. */
export interface DeliveryReport {
  target: string;
  message: AlertMessage;
  attempts: number;
  error?: Error;
}

interface Active {
  item: AlertItem;
  /** When a message last carried it (firing or repeat); undefined while only pending. */
  notifiedAt: number | undefined;
}

/** An active alert and when a message last carried it: what {@link Notifier.snapshot} gives and {@link Notifier.restore} takes. */
export interface ActiveAlert {
  item: AlertItem;
  /** Epoch ms of the last message that carried it; undefined when none did yet. */
  notifiedAt?: number;
}

interface Batch {
  items: Map<string, AlertItem>;
  timer: NodeJS.Timeout | undefined;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 6, initialDelayMs: 500, maxDelayMs: 30_000 };

/**
 * Alert delivery with deduplication, grouping, repeats and resolved messages.
 *
 * - `raise()` the same alert (same cluster, condition and subject) as often as the
 *   condition holds: the first raise sends a `firing` message, later ones are counted and
 *   suppressed until `repeatIntervalMs` has passed since the last message, which sends a
 *   `repeat`. Callers therefore re-raise on every check while a condition holds.
 * - `resolve()` an active alert sends a `resolved` message; resolving an unknown one does nothing.
 * - Alerts of one cluster and condition raised within `groupWaitMs` travel in one message.
 * - Each message goes to every target independently, retried with capped exponential
 *   backoff and jitter (or the receiver's `Retry-After`); permanent failures are not retried.
 *
 * Emits `delivered` and `failed` with a {@link DeliveryReport}.
 *
 * @example
 * const notifier = createNotifier(config.notify, { logger });
 * notifier.raise({ cluster: 'platform-db', condition: 'replica-sql-error', subject: 'db2', severity: 'critical', summary: 'SQL thread stopped' });
 * notifier.resolve({ cluster: 'platform-db', condition: 'replica-sql-error', subject: 'db2' });
 * await notifier.close();
 */
export class Notifier extends EventEmitter {
  readonly #targets: readonly DeliveryTarget[];
  readonly #groupWaitMs: number;
  readonly #repeatIntervalMs: number;
  readonly #groupIntervalMs: number;
  readonly #mute: ((item: AlertItem) => boolean) | undefined;
  readonly #dropUnannounced: boolean;
  #commit: CommitHook | undefined;
  /** When each group last sent a message (for the group interval). */
  readonly #lastSent = new Map<string, number>();
  readonly #retry: RetryPolicy;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #active = new Map<string, Active>();
  readonly #batches = new Map<string, Batch>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #messages: Counter<'target' | 'result'> | undefined;
  readonly #suppressed: Counter<'condition'> | undefined;
  #closed = false;
  /** Bumped by forget(): a commit that fails after a hand-over must not bring back what was handed over. */
  #handovers = 0;

  constructor(options: NotifierOptions) {
    super();
    this.#targets = options.targets;
    this.#groupWaitMs = options.groupWaitMs ?? 2000;
    this.#repeatIntervalMs = options.repeatIntervalMs ?? 4 * 3600_000;
    this.#groupIntervalMs = options.groupIntervalMs ?? 0;
    this.#mute = options.mute;
    this.#dropUnannounced = options.dropUnannouncedResolutions ?? false;
    this.#commit = options.commit;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    if (options.registry) {
      this.#messages = new Counter({
        name: 'insitu_notify_messages_total',
        help: 'Alert messages handed to a target, by target and result (delivered or failed after all retries)',
        labelNames: ['target', 'result'] as const,
        registers: [options.registry],
      });
      this.#suppressed = new Counter({
        name: 'insitu_notify_suppressed_total',
        help: 'Raises of an already-notified alert that sent nothing (deduplicated)',
        labelNames: ['condition'] as const,
        registers: [options.registry],
      });
    }
  }

  /** The alerts currently firing. */
  active(): AlertItem[] {
    return [...this.#active.values()].map((entry) => ({ ...entry.item }));
  }

  /**
   * The active alerts with the time a message last carried each: a component that hands
   * alerting over (a new leader) restores it so that nothing is announced twice.
   */
  snapshot(): ActiveAlert[] {
    return [...this.#active.values()].map((entry) => ({
      item: { ...entry.item, details: { ...entry.item.details } },
      ...(entry.notifiedAt === undefined ? {} : { notifiedAt: entry.notifiedAt }),
    }));
  }

  /**
   * Take over active alerts from a {@link snapshot} (of another process). Announced ones
   * are not announced again: raising them repeats only after the repeat interval, and
   * resolving them sends the resolved message. Unannounced ones are announced by their next raise.
   */
  restore(alerts: readonly ActiveAlert[]): void {
    for (const alert of alerts) {
      if (this.#active.has(alert.item.key)) continue;
      this.#active.set(alert.item.key, {
        item: { ...alert.item, details: { ...alert.item.details } },
        notifiedAt: alert.notifiedAt,
      });
    }
  }

  /**
   * Hand active alerts over without a message: drop those `which` selects (and their pending
   * batch entries). For a leader that lost its leadership: the next leader restored them
   * from a {@link snapshot} and resolves them; this process must neither repeat nor resolve
   * them. Returns how many were dropped.
   */
  forget(which: (item: AlertItem) => boolean): number {
    let dropped = 0;
    this.#handovers += 1;
    for (const [key, entry] of [...this.#active]) {
      if (!which(entry.item)) continue;
      this.#active.delete(key);
      this.#batches.get(groupKey(entry.item))?.items.delete(key);
      dropped += 1;
    }
    return dropped;
  }

  /**
   * Make every message durable somewhere before it goes out, e.g. a leader that publishes its
   * {@link snapshot} for the next leader (fenced by its leadership). Without it, a leader that
   * sent a message and lost its leadership before publishing left the next one a state that
   * did not know of that message: the next leader announced the alert a second time, and a
   * `failover-failed` it never heard of stayed firing at the receivers for ever. A commit that
   * fails (deposed, coord unreachable) sends nothing: a firing alert stays unannounced (its
   * next raise, or the next leader, announces it), a resolution stays active (its next
   * `resolve()` tries again). `undefined` removes the hook.
   */
  setCommit(hook: CommitHook | undefined): void {
    this.#commit = hook;
  }

  /** Report that a condition holds. Returns true when this raise will send a message (new or repeat). */
  raise(alert: AlertInput): boolean {
    if (this.#closed) return false;
    const key = alertKey(alert);
    const now = this.#now();
    const at = new Date(now).toISOString();
    const existing = this.#active.get(key);
    if (existing === undefined) {
      const item = firingItem(key, alert, at);
      this.#active.set(key, { item, notifiedAt: undefined });
      this.#enqueue(alert, item);
      return true;
    }
    const item = existing.item;
    item.count += 1;
    item.lastSeenAt = at;
    item.summary = alert.summary;
    item.details = { ...alert.details };
    const escalated = severityRank(alert.severity) > severityRank(item.severity);
    item.severity = alert.severity;
    const pending = existing.notifiedAt === undefined;
    if (pending) {
      // Still waiting in its batch: the batch carries the newest text.
      this.#enqueue(alert, item);
      return false;
    }
    if (escalated || now - (existing.notifiedAt ?? now) >= this.#repeatIntervalMs) {
      item.state = 'repeat';
      existing.notifiedAt = undefined;
      this.#enqueue(alert, item);
      return true;
    }
    this.#suppressed?.inc({ condition: alert.condition });
    return false;
  }

  /**
   * Send a one-off notice (a failover happened, a member was restarted): grouped like
   * alerts, but neither deduplicated nor kept active, so nothing resolves it.
   */
  event(alert: AlertInput): void {
    if (this.#closed) return;
    const at = new Date(this.#now()).toISOString();
    const item: AlertItem = { ...firingItem(`${alertKey(alert)}#${newId('evt')}`, alert, at), state: 'notice' };
    this.#enqueue(alert, item);
  }

  /** Report that a condition cleared. Returns true when a resolved message will be sent. */
  resolve(alert: Pick<AlertInput, 'cluster' | 'condition' | 'subject'>, summary?: string): boolean {
    if (this.#closed) return false;
    const key = alertKey(alert);
    const existing = this.#active.get(key);
    if (existing === undefined) return false;
    this.#active.delete(key);
    if (existing.notifiedAt === undefined && this.#dropUnannounced) {
      // Never announced: take it out of its pending batch and say nothing.
      const batch = this.#batches.get(groupKey(alert));
      batch?.items.delete(key);
      return false;
    }
    const at = new Date(this.#now()).toISOString();
    const item: AlertItem = {
      ...existing.item,
      state: 'resolved',
      resolvedAt: at,
      details: { ...existing.item.details },
      ...(summary === undefined ? {} : { summary }),
    };
    this.#enqueue(alert, item);
    return true;
  }

  #enqueue(alert: Pick<AlertInput, 'cluster' | 'condition'>, item: AlertItem): void {
    const group = groupKey(alert);
    let batch = this.#batches.get(group);
    if (batch === undefined) {
      batch = { items: new Map(), timer: undefined };
      this.#batches.set(group, batch);
      const last = this.#lastSent.get(group);
      const now = this.#now();
      const delay =
        last !== undefined && this.#groupIntervalMs > 0 && now - last < this.#groupIntervalMs
          ? last + this.#groupIntervalMs - now
          : this.#groupWaitMs;
      const timer = setTimeout(() => this.#send(group), delay);
      timer.unref();
      batch.timer = timer;
    }
    batch.items.set(item.key, { ...item, details: { ...item.details } });
  }

  #send(group: string): void {
    const batch = this.#batches.get(group);
    if (batch === undefined) return;
    this.#batches.delete(group);
    if (batch.timer) clearTimeout(batch.timer);
    const now = this.#now();
    // A resolution is never muted: it is only queued for an alert a message announced (or when
    // unannounced resolutions are kept), and muting it would leave that alert firing for ever at
    // the receiver (an inhibited node's alert that cleared while the node still counted as lost).
    const items = [...batch.items.values()].filter(
      (item) => item.state === 'resolved' || !(this.#mute?.(item) ?? false),
    );
    const before = new Map<string, Pick<Active, 'notifiedAt'> & { state: AlertItem['state'] }>();
    for (const item of items) {
      const active = this.#active.get(item.key);
      if (active && item.state !== 'resolved') {
        before.set(item.key, { notifiedAt: active.notifiedAt, state: active.item.state });
        active.notifiedAt = now;
        active.item.state = 'firing';
      }
    }
    const groupActive = [...this.#active.values()].some((entry) => groupKey(entry.item) === group);
    if (items.length === 0) {
      if (!groupActive) this.#lastSent.delete(group);
      return;
    }
    // A group with nothing active any more starts afresh (group wait) at its next alert.
    if (groupActive) this.#lastSent.set(group, now);
    else this.#lastSent.delete(group);
    const message = buildMessage(newId('alr'), items, new Date(now));
    const commit = this.#commit;
    if (commit === undefined) {
      this.#deliverAll(message);
      return;
    }
    const handovers = this.#handovers;
    const committed = commit(message).then(
      () => this.#deliverAll(message),
      (error: unknown) => {
        if (this.#handovers === handovers) this.#uncommitted(message, before);
        this.#logger?.warn(
          { alert: message.id, title: message.title, err: (error as Error)?.message ?? String(error) },
          'alert message not sent: its commit failed',
        );
      },
    );
    const tracked = committed.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  #deliverAll(message: AlertMessage): void {
    for (const target of this.#targets) {
      const delivery = this.#deliver(target, message).finally(() => this.#inFlight.delete(delivery));
      this.#inFlight.add(delivery);
    }
  }

  /** The commit of a message failed: nothing was sent, so the state goes back to what it was before it. */
  #uncommitted(
    message: AlertMessage,
    before: ReadonlyMap<string, Pick<Active, 'notifiedAt'> & { state: AlertItem['state'] }>,
  ): void {
    for (const item of message.alerts) {
      if (item.state === 'resolved') {
        // Still announced at the receivers: active again until a resolve() gets through.
        if (!this.#active.has(item.key)) {
          const { resolvedAt: _resolvedAt, ...rest } = item;
          this.#active.set(item.key, { item: { ...rest, state: 'firing' }, notifiedAt: this.#now() });
        }
        continue;
      }
      const active = this.#active.get(item.key);
      const previous = before.get(item.key);
      if (active === undefined || previous === undefined) continue;
      active.notifiedAt = previous.notifiedAt;
      active.item.state = previous.state;
    }
  }

  async #deliver(target: DeliveryTarget, message: AlertMessage): Promise<void> {
    let attempt = 0;
    for (;;) {
      attempt += 1;
      try {
        await target.send(message);
        this.#messages?.inc({ target: target.name, result: 'delivered' });
        this.#logger?.info(
          { target: target.name, alert: message.id, title: message.title, attempts: attempt },
          'alert delivered',
        );
        this.emit('delivered', { target: target.name, message, attempts: attempt } satisfies DeliveryReport);
        return;
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        const permanent = failure instanceof DeliveryError && failure.permanent;
        if (permanent || attempt >= this.#retry.attempts || this.#abort.signal.aborted) {
          this.#messages?.inc({ target: target.name, result: 'failed' });
          this.#logger?.error(
            { target: target.name, alert: message.id, attempts: attempt, err: failure },
            'alert delivery failed',
          );
          this.emit('failed', {
            target: target.name,
            message,
            attempts: attempt,
            error: failure,
          } satisfies DeliveryReport);
          return;
        }
        const hint = failure instanceof DeliveryError ? failure.retryAfterMs : undefined;
        const backoff = Math.min(this.#retry.maxDelayMs, this.#retry.initialDelayMs * 2 ** (attempt - 1));
        const delay = Math.min(this.#retry.maxDelayMs, hint ?? backoff * (0.8 + Math.random() * 0.4));
        this.#logger?.warn(
          { target: target.name, alert: message.id, attempt, retryInMs: Math.round(delay), err: failure.message },
          'alert delivery failed; retrying',
        );
        await sleep(delay, this.#abort.signal);
      }
    }
  }

  /** Send every pending group now and wait for every delivery (with its retries) to end. */
  async flush(): Promise<void> {
    for (const group of [...this.#batches.keys()]) this.#send(group);
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /**
   * Send what is pending, wait up to `timeoutMs` (default 5000) for deliveries, then stop
   * retrying and close the targets. Later raises are ignored.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    const flushed = this.flush();
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([flushed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    if (timer) clearTimeout(timer);
    this.#abort.abort();
    await flushed;
    await Promise.all(
      this.#targets.map(async (target) => {
        await target.close?.();
      }),
    );
  }
}

/** A new alert item, first seen now. */
function firingItem(key: string, alert: AlertInput, at: string): AlertItem {
  return {
    key,
    cluster: alert.cluster,
    condition: alert.condition,
    subject: alert.subject ?? '',
    severity: alert.severity,
    state: 'firing',
    summary: alert.summary,
    details: { ...alert.details },
    firstSeenAt: at,
    lastSeenAt: at,
    count: 1,
  };
}

function severityRank(severity: AlertInput['severity']): number {
  return severity === 'critical' ? 2 : severity === 'warning' ? 1 : 0;
}

/** Read a secret from a file (trailing newline dropped) or from a named environment variable. */
export function readSecret(
  from: { file?: string; env?: string },
  environment: NodeJS.ProcessEnv,
  what: string,
): string | undefined {
  if (from.file !== undefined) {
    try {
      return readFileSync(from.file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        `cannot read the ${what} from ${from.file}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  if (from.env !== undefined) {
    const value = environment[from.env];
    if (value === undefined || value === '') {
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        `the ${what} should be in the environment variable ${from.env}, which is not set`,
      );
    }
    return value;
  }
  return undefined;
}

/** Options of {@link createNotifier} besides the config section. */
export interface CreateNotifierOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  registry?: Registry;
  now?: () => number;
  /** More targets, e.g. the component's own event log. */
  extraTargets?: readonly DeliveryTarget[];
  /** See {@link NotifierOptions.mute}. */
  mute?: (item: AlertItem) => boolean;
  /** See {@link NotifierOptions.dropUnannouncedResolutions}. */
  dropUnannouncedResolutions?: boolean;
  /** See {@link Notifier.setCommit}. */
  commit?: CommitHook;
}

/**
 * Build a {@link Notifier} from a validated `notify:` config section: one webhook target per
 * entry and an email target when `email` is set (its password read from `passwordFile` or
 * `passwordEnv`).
 */
export function createNotifier(config: NotifyConfig, options: CreateNotifierOptions = {}): Notifier {
  const targets: DeliveryTarget[] = config.webhooks.map((hook) =>
    webhookTarget({ url: hook.url, timeoutMs: hook.timeoutMs, ...(hook.headers ? { headers: hook.headers } : {}) }),
  );
  if (config.email) {
    const email = config.email;
    const pass = readSecret(
      {
        ...(email.passwordFile === undefined ? {} : { file: email.passwordFile }),
        ...(email.passwordEnv === undefined ? {} : { env: email.passwordEnv }),
      },
      options.env ?? process.env,
      'SMTP password',
    );
    if (pass !== undefined && email.user === undefined) {
      throw new InsituError('INSITU_CONFIG_INVALID', 'notify.email has a password but no user');
    }
    targets.push(
      emailTarget({
        host: email.host,
        port: email.port,
        secure: email.secure,
        requireTls: email.requireTls,
        from: email.from,
        to: email.to,
        timeoutMs: email.timeoutMs,
        ...(email.user !== undefined && pass !== undefined ? { auth: { user: email.user, pass } } : {}),
      }),
    );
  }
  targets.push(...(options.extraTargets ?? []));
  return new Notifier({
    targets,
    groupWaitMs: config.groupWaitMs,
    repeatIntervalMs: config.repeatIntervalMs,
    groupIntervalMs: config.groupIntervalMs,
    ...(options.mute ? { mute: options.mute } : {}),
    ...(options.dropUnannouncedResolutions ? { dropUnannouncedResolutions: true } : {}),
    ...(options.commit ? { commit: options.commit } : {}),
    retry: config.retry,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}
