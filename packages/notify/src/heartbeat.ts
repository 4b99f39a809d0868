import type { Logger } from '@insitu/core';

/** Options of {@link startHeartbeat}. */
export interface HeartbeatOptions {
  /** Receives `{ kind: 'insitu.heartbeat', source, sentAt, seq }` as a JSON POST on every beat. */
  url: string;
  intervalMs: number;
  /** Who is beating, e.g. `operator node2`; in the body. */
  source: string;
  headers?: Readonly<Record<string, string>>;
  timeoutMs?: number;
  logger?: Logger;
  /** Called after each beat with its outcome (for events and metrics). */
  onBeat?: (outcome: { ok: boolean; status?: number; error?: string }) => void;
}

/** A running heartbeat; `stop()` ends it. */
export interface Heartbeat {
  stop(): void;
}

/**
 * A dead man's switch: POST to `url` every `intervalMs` for as long as alerting works, so
 * that a receiver which stops hearing it (a monitoring service's heartbeat check) tells
 * administrators that alerting itself is down. A failed beat is only logged: the
 * receiver's silence is the alarm. The first beat goes out at once.
 */
export function startHeartbeat(options: HeartbeatOptions): Heartbeat {
  let seq = 0;
  let stopped = false;
  const beat = async (): Promise<void> => {
    seq += 1;
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'insitu-notify', ...options.headers },
        body: JSON.stringify({
          kind: 'insitu.heartbeat',
          source: options.source,
          seq,
          sentAt: new Date().toISOString(),
        }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      });
      await response.text().catch(() => '');
      if (!response.ok) options.logger?.warn({ status: response.status }, 'heartbeat refused by its receiver');
      options.onBeat?.({ ok: response.ok, status: response.status });
    } catch (error) {
      options.logger?.warn({ err: (error as Error).message }, 'heartbeat could not be sent');
      options.onBeat?.({ ok: false, error: (error as Error).message });
    }
  };
  void beat();
  const timer = setInterval(() => {
    if (!stopped) void beat();
  }, options.intervalMs);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
