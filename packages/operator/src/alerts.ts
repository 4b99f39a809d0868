import type { Logger, Registry } from '@insitu/core';
import {
  alertKey,
  createNotifier,
  startHeartbeat,
  type ActiveAlert,
  type AlertItem,
  type DeliveryReport,
  type Heartbeat,
  type Notifier,
  type Severity,
} from '@insitu/notify';
import type { NodeConfig } from './node-config.js';
import type { Silence } from './records.js';
import { silenceMatches, type AlertLabel } from './silences.js';
import type { EventSink } from './supervisor.js';

/** The alerts' cluster name (the `cluster` of every message). */
export const ALERT_CLUSTER = 'platform';

/** A condition that holds now, as the leader sees it. */
export interface AlertCondition {
  condition: string;
  subject: string;
  severity: Severity;
  summary: string;
  /** `node` and `service` are labels too (silences match them; node loss inhibits by `node`). */
  details: Record<string, unknown> & { node?: string; service?: string };
}

/** What the leader publishes under `operator/alerts` for `insitu alerts list` and the next leader. */
export interface PublishedAlerts {
  leader: string;
  at: string;
  active: (ActiveAlert & { muted?: 'silenced' | 'inhibited' })[];
}

function labelsOf(
  item: Pick<AlertItem, 'condition' | 'subject' | 'severity' | 'details'>,
): Partial<Record<AlertLabel, string>> {
  const node = typeof item.details.node === 'string' ? item.details.node : '';
  const service = typeof item.details.service === 'string' ? item.details.service : '';
  return { condition: item.condition, subject: item.subject, severity: item.severity, node, service };
}

/**
 * The leader's alerting: conditions in, Alertmanager's semantics out (through
 * `@insitu/notify`): group wait, group interval and repeat; a lost node inhibits the alerts
 * about its own services; silences mute what they match until they end; an alert no message
 * announced is never resolved either; a heartbeat to a dead man's switch while it leads.
 * Built afresh by each leader from the previous leader's published state.
 */
export class OperatorAlerts {
  readonly #notifier: Notifier;
  #heartbeat: Heartbeat | undefined;
  #lost = new Set<string>();
  #silences: Silence[] = [];
  #deposed = false;

  constructor(
    private readonly options: {
      config: Readonly<NodeConfig>;
      node: string;
      record: EventSink;
      logger: Logger;
      registry?: Registry;
      restored?: readonly ActiveAlert[];
      /**
       * Publish the state to hand over (fenced by the leadership); awaited before each message
       * goes out, which is dropped when it throws (see `Notifier.setCommit`).
       */
      commit?: (published: PublishedAlerts) => Promise<void>;
    },
  ) {
    const { config } = options;
    this.#notifier = createNotifier(
      {
        ...config.notify,
        groupWaitMs: config.alerts.groupWaitMs,
        groupIntervalMs: config.alerts.groupIntervalMs,
        repeatIntervalMs: config.alerts.repeatIntervalMs,
      },
      {
        logger: options.logger.child({ subsystem: 'alerts' }),
        ...(options.registry ? { registry: options.registry } : {}),
        mute: (item) => this.mutedBy(item) !== undefined,
        dropUnannouncedResolutions: true,
        ...(options.commit ? { commit: async () => options.commit?.(this.published(options.node)) } : {}),
      },
    );
    if (options.restored) this.#notifier.restore(options.restored);
    this.#notifier.on('delivered', (report: DeliveryReport) => {
      options.record({
        type: report.message.status === 'resolved' ? 'alert-resolved-sent' : 'alert-sent',
        subject: report.message.condition,
        reason: `${report.message.title} → ${report.target}`,
        details: { alerts: report.message.alerts.map((a) => `${a.subject}:${a.state}`), message: report.message.id },
      });
    });
    this.#notifier.on('failed', (report: DeliveryReport) => {
      options.record({
        type: 'alert-failed',
        subject: report.message.condition,
        reason: `could not deliver "${report.message.title}" to ${report.target}: ${report.error?.message ?? 'failed'}`,
      });
    });
    const heartbeat = config.alerts.heartbeat;
    if (heartbeat) {
      this.#heartbeat = startHeartbeat({
        url: heartbeat.url,
        intervalMs: heartbeat.intervalMs,
        source: `insitu operator leader ${options.node}`,
        logger: options.logger,
        ...(heartbeat.headers ? { headers: heartbeat.headers } : {}),
      });
    }
  }

  /** Why an alert is not being sent now, if it is not. */
  mutedBy(
    item: Pick<AlertItem, 'condition' | 'subject' | 'severity' | 'details'>,
  ): 'silenced' | 'inhibited' | 'deposed' | undefined {
    if (this.#deposed) return 'deposed';
    const labels = labelsOf(item);
    if (item.condition !== 'node-lost' && labels.node && this.#lost.has(labels.node)) return 'inhibited';
    const now = Date.now();
    if (this.#silences.some((silence) => silenceMatches(silence, labels, now))) return 'silenced';
    return undefined;
  }

  /**
   * Bring the alerts in line with the conditions that hold now: raise each (deduplicated),
   * resolve what no longer holds. `lost` inhibits alerts of those nodes' services.
   */
  evaluate(conditions: readonly AlertCondition[], lost: ReadonlySet<string>, silences: readonly Silence[]): void {
    this.#lost = new Set(lost);
    this.#silences = [...silences];
    const holding = new Set<string>();
    for (const condition of conditions) {
      const input = { cluster: ALERT_CLUSTER, ...condition };
      holding.add(alertKey(input));
      this.#notifier.raise(input);
    }
    for (const active of this.#notifier.active()) {
      if (!holding.has(active.key))
        this.#notifier.resolve({ cluster: ALERT_CLUSTER, condition: active.condition, subject: active.subject });
    }
  }

  /** The state to publish (and hand to the next leader). */
  published(leader: string): PublishedAlerts {
    return {
      leader,
      at: new Date().toISOString(),
      active: this.#notifier.snapshot().map((entry) => {
        const muted = this.mutedBy(entry.item);
        return muted === 'silenced' || muted === 'inhibited' ? { ...entry, muted } : entry;
      }),
    };
  }

  async flush(): Promise<void> {
    await this.#notifier.flush();
  }

  /**
   * Stop. A leader that stepped down (`deposed`) sends nothing more: what it had not
   * announced yet is in its published state without an announcement time, so the next
   * leader announces it. A leader that resigns in order first sends what is pending.
   */
  async close(options: { deposed: boolean }): Promise<void> {
    this.#heartbeat?.stop();
    if (options.deposed) this.#deposed = true;
    await this.#notifier.close(options.deposed ? 0 : 2000);
  }
}
