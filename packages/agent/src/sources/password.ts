import { readFileSync } from 'node:fs';
import { configInvalid } from '../errors.js';

/** The password of a SQL source: from its file (first line) or its environment variable; never from the config itself. */
export function sourcePassword(
  config: { name: string; passwordFile?: string; passwordEnv?: string },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (config.passwordFile) {
    try {
      return readFileSync(config.passwordFile, 'utf8').split(/\r?\n/)[0] ?? '';
    } catch (error) {
      throw configInvalid(
        `source ${config.name}: cannot read passwordFile ${config.passwordFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  if (config.passwordEnv) {
    const value = env[config.passwordEnv];
    if (value === undefined)
      throw configInvalid(`source ${config.name}: environment variable ${config.passwordEnv} (passwordEnv) is not set`);
    return value;
  }
  return undefined;
}
