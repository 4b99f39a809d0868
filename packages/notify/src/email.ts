import { createTransport } from 'nodemailer';
import { renderText, type AlertMessage } from './alert.js';
import { DeliveryError, type DeliveryTarget } from './target.js';

/** Options of {@link emailTarget}. */
export interface EmailOptions {
  host: string;
  port: number;
  /** TLS from the first byte (465); otherwise STARTTLS is used when the server offers it. */
  secure?: boolean;
  requireTls?: boolean;
  auth?: { user: string; pass: string };
  from: string;
  to: readonly string[];
  timeoutMs?: number;
}

/**
 * Send each message as a plain-text mail through an SMTP server (nodemailer). SMTP 5xx
 * replies are permanent; connection errors and 4xx replies are retried by the notifier.
 */
export function emailTarget(options: EmailOptions): DeliveryTarget {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const transport = createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure ?? false,
    requireTLS: options.requireTls ?? false,
    ...(options.auth ? { auth: options.auth } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    name: `email ${options.to.join(',')} via ${options.host}:${options.port}`,
    async send(message: AlertMessage): Promise<void> {
      try {
        await transport.sendMail({
          from: options.from,
          to: [...options.to],
          subject: message.title,
          text: renderText(message),
          headers: {
            'X-Insitu-Alert-Id': message.id,
            'X-Insitu-Alert-Group': `${message.cluster}/${message.condition}`,
            'X-Insitu-Alert-Status': message.status,
          },
        });
      } catch (error) {
        const code = (error as { responseCode?: unknown }).responseCode;
        const permanent = typeof code === 'number' && code >= 500 && code < 600;
        throw new DeliveryError(`smtp delivery failed: ${(error as Error).message}`, { permanent, cause: error });
      }
    },
    async close(): Promise<void> {
      transport.close();
    },
  };
}
