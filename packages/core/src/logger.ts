import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';

export type { Logger } from 'pino';
export { LOG_LEVELS, type LogLevel };

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Component name written on every line (`server`, `agent`, `cli` ...). */
  name?: string;
  /** Where lines go; standard output by default. */
  destination?: DestinationStream;
  /** Append lines to this file instead (created with its directory). */
  file?: string;
  /** Fields written on every line. */
  base?: Record<string, unknown>;
}

/**
 * Paths that never reach a log line: credentials, passwords, tokens and keys in
 * headers and bodies. Redaction replaces the value, the key stays.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  '*.password',
  '*.token',
  '*.credential',
  '*.secret',
  'password',
  'token',
  'credential',
  'secret',
];

/** A pino logger with our redaction and timestamp settings. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { ...(options.name ? { component: options.name } : {}), ...options.base },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.file) return pino(config, pino.destination({ dest: options.file, mkdir: true, sync: false }));
  return options.destination ? pino(config, options.destination) : pino(config);
}
