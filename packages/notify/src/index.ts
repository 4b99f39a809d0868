/**
 * @insitu/notify — alert delivery for the components that keep the platform healthy (the
 * dbmanager, later the operator): webhook (JSON POST) and SMTP mail (nodemailer),
 * deduplicated by cluster, condition and subject, grouped by cluster and condition, with
 * repeat and resolved messages, retried with backoff.
 *
 * Start with {@link createNotifier} on a config section validated by {@link NotifyConfigSchema},
 * then `raise()` while a condition holds and `resolve()` when it clears.
 */
export { Notifier, createNotifier, readSecret } from './notifier.js';
export type {
  NotifierOptions,
  RetryPolicy,
  DeliveryReport,
  CreateNotifierOptions,
  ActiveAlert,
  CommitHook,
} from './notifier.js';
export { startHeartbeat } from './heartbeat.js';
export type { Heartbeat, HeartbeatOptions } from './heartbeat.js';
export { NotifyConfigSchema } from './config.js';
export type { NotifyConfig } from './config.js';
export { alertKey, groupKey, buildMessage, renderText } from './alert.js';
export type { AlertInput, AlertItem, AlertMessage, AlertState, Severity } from './alert.js';
export { DeliveryError } from './target.js';
export type { DeliveryTarget } from './target.js';
export { webhookTarget } from './webhook.js';
export type { WebhookOptions } from './webhook.js';
export { emailTarget } from './email.js';
export type { EmailOptions } from './email.js';
