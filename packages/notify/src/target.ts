import type { AlertMessage } from './alert.js';

/** A place alerts are delivered to. `send` throws a {@link DeliveryError} when it fails. */
export interface DeliveryTarget {
  /** For logs and metrics: `webhook https://...`, `email ops@example.org`. */
  readonly name: string;
  send(message: AlertMessage): Promise<void>;
  close?(): Promise<void>;
}

/**
 * A failed delivery. `permanent` failures (a 4xx answer, a rejected recipient) are not
 * retried; `retryAfterMs` is the receiver's own hint (HTTP `Retry-After`).
 */
export class DeliveryError extends Error {
  readonly permanent: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { permanent?: boolean; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DeliveryError';
    this.permanent = options.permanent ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}
