import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InsituError, type Logger } from '@insitu/core';
import type { AgentIdentity, PlatformClient } from './platform-client.js';
import { configInvalid } from '../errors.js';

/** The file in the agent's data directory that holds its credential (mode 0600). */
export const CREDENTIAL_FILE = 'agent-credential';

/** A name the platform accepts for an agent: the host name, cleaned. */
export function defaultAgentName(): string {
  const cleaned = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return cleaned.slice(0, 128) || 'agent';
}

async function readCredential(file: string): Promise<string | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return text || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw configInvalid(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/**
 * The agent's identity: reuse the credential kept in `dataDir` when the platform still
 * accepts it; otherwise exchange the enrolment token for a new one (once) and keep it
 * on disk with mode 0600. A token given to an agent that is enrolled already is not used.
 */
export async function obtainCredential(options: {
  client: PlatformClient;
  dataDir: string;
  token?: string;
  name: string;
  version: string;
  logger: Logger;
}): Promise<{ agent: AgentIdentity; credential: string; enrolled: boolean }> {
  const { client, dataDir, token, logger } = options;
  const file = join(dataDir, CREDENTIAL_FILE);
  const stored = await readCredential(file);
  if (stored) {
    client.setCredential(stored);
    const agent = await client.self();
    if (agent) {
      if (token) logger.warn('this agent is enrolled already; the enrolment token was not used');
      await chmod(file, 0o600);
      return { agent, credential: stored, enrolled: false };
    }
    if (!token) {
      throw new InsituError(
        'INSITU_UNAUTHENTICATED',
        `the platform refused the credential in ${file} (the agent was revoked?); enrol again with --token`,
      );
    }
    logger.warn('the stored credential was refused; enrolling again with the token');
  }
  if (!token)
    throw new InsituError(
      'INSITU_USAGE',
      `this agent is not enrolled yet (no ${file}); pass --token with an enrolment token`,
    );
  const result = await client.enrol(token, {
    name: options.name,
    hostname: hostname().slice(0, 255),
    version: options.version,
  });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${result.credential}\n`, { mode: 0o600 });
  await rename(temp, file);
  client.setCredential(result.credential);
  logger.info({ agentId: result.agent.id, providerId: result.agent.providerId }, 'enrolled');
  return { ...result, enrolled: true };
}
