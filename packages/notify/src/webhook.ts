import type { AlertMessage } from './alert.js';
import { DeliveryError, type DeliveryTarget } from './target.js';

/** Options of {@link webhookTarget}. */
export interface WebhookOptions {
  url: string;
  headers?: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

function retryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Where a URL may carry a secret (a token in the path or query), logs show only its origin. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname.length > 1 ? '/…' : ''}`;
  } catch {
    return 'webhook';
  }
}

/**
 * POST each message as JSON to `url`. A 2xx answer is success; 408, 425, 429 and 5xx
 * answers and network errors are retried by the notifier; other answers are permanent.
 */
export function webhookTarget(options: WebhookOptions): DeliveryTarget {
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    name: `webhook ${redactUrl(options.url)}`,
    async send(message: AlertMessage): Promise<void> {
      let response: Response;
      try {
        response = await fetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'insitu-notify', ...options.headers },
          body: JSON.stringify(message),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new DeliveryError(`webhook unreachable: ${(error as Error).message}`, { cause: error });
      }
      // Always consume the body: an unread body holds the connection.
      const text = await response.text().catch(() => '');
      if (response.ok) return;
      const transient =
        response.status === 408 || response.status === 425 || response.status === 429 || response.status >= 500;
      const hint = retryAfter(response.headers.get('retry-after'));
      throw new DeliveryError(`webhook answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`, {
        permanent: !transient,
        ...(hint === undefined ? {} : { retryAfterMs: hint }),
      });
    },
  };
}
