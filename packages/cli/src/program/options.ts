import { LOG_LEVELS } from '@insitu/core/basics';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CliIo } from '../io.js';

// What every command group shares: flag parsers and the options many commands take.

/** What a command group's actions reach: the streams and environment, and the exit code a command sets. */
export interface CommandContext {
  io: CliIo;
  /** 0 unless a command's outcome says otherwise (`status` not ready, `invoke` answered an error…). */
  exitCode: number;
}

export function portOption(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw new InvalidArgumentError(`--port must be a number from 0 to 65535, got "${value}"`);
  return Number(value);
}

export function positiveInt(value: string, flag: string, max = 999_999_999): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new InvalidArgumentError(
      `${flag} must be a whole number from 1 to ${max.toLocaleString('en-US')}, got "${value}"`,
    );
  }
  return Number(value);
}

export function nonNegativeInt(value: string, flag: string): number {
  if (!/^\d{1,6}$/.test(value)) throw new InvalidArgumentError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

export function emailOption(value: string): string {
  if (!/^[^\s@]{1,64}@[^\s@]{1,189}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not an email address`);
  return value;
}

export const logLevel = () => new Option('--log-level <level>', 'log level').choices(LOG_LEVELS);
export const dataDir = () => new Option('--data-dir <dir>', 'data directory (env INSITU_DATA_DIR, default ./.insitu)');
export const configFile = () =>
  new Option('--config <file>', 'config file (env INSITU_CONFIG, default <data dir>/config.yaml)');

export const url = () => new Option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)');
export const token = () =>
  new Option('--token <token>', 'bearer token (env INSITU_TOKEN; default: the session insitu login saved for the URL)');
export const profile = () =>
  new Option('--profile <name>', 'saved sign-in to use (insitu login --profile; default: default)');
export const json = () => new Option('--json', 'print the result as JSON');
/** The options of every command that talks to a platform as a signed-in user. */
export const remote = (command: Command) =>
  command.addOption(url()).addOption(token()).addOption(profile()).addOption(dataDir()).addOption(json());
export type Remote = { url?: string; token?: string; dataDir?: string; json?: boolean; profile?: string };
