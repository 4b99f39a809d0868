import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InsituError } from '@insitu/core';
import type { CliIo } from './io.js';

/** One signed-in session, kept per platform URL. */
export interface ProfileSession {
  token: string;
  email: string;
  expiresAt: string;
}

/** A named profile: the URL last signed in to, and a session per URL. */
export interface Profile {
  url?: string;
  sessions: Record<string, ProfileSession>;
}

interface ProfileFile {
  profiles: Record<string, Profile>;
}

/** `~/.config/insitu/profiles.json` (honours `XDG_CONFIG_HOME`); mode 0600, since it holds bearer tokens. */
export function profileFileOf(io: CliIo): string {
  const base = io.env.XDG_CONFIG_HOME || join(io.env.HOME || homedir(), '.config');
  return join(base, 'insitu', 'profiles.json');
}

function readProfiles(file: string): ProfileFile {
  if (!existsSync(file)) return { profiles: {} };
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ProfileFile>;
    return { profiles: parsed.profiles ?? {} };
  } catch (error) {
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      `the profile file ${file} is not valid JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The profile of this name (empty when none was saved). */
export function readProfile(io: CliIo, name = 'default'): Profile {
  return readProfiles(profileFileOf(io)).profiles[name] ?? { sessions: {} };
}

/** Change one profile and write the file atomically with mode 0600. */
export async function updateProfile(io: CliIo, name: string, change: (profile: Profile) => void): Promise<string> {
  const file = profileFileOf(io);
  const all = readProfiles(file);
  const profile = all.profiles[name] ?? { sessions: {} };
  change(profile);
  all.profiles[name] = profile;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
  return file;
}

/** The saved, unexpired session for `url` in the profile, if any. */
export function sessionFor(profile: Profile, url: string): ProfileSession | undefined {
  const session = profile.sessions[url];
  return session && Date.parse(session.expiresAt) > Date.now() ? session : undefined;
}
