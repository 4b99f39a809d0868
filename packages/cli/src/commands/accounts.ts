import { InsituError } from '@insitu/core';
import { ApiClient, remoteUrl, type RemoteOptions } from '../api-client.js';
import { line, printItems, printObject, type CliIo } from '../io.js';
import { readProfile, sessionFor, updateProfile } from '../profile.js';
import { listAll, orgIdOf } from '../refs.js';

type Json = { json?: boolean };

interface User {
  id: string;
  email: string;
  name: string;
  status: string;
}

/** Read a password from stdin when it is piped (never from a flag by default: flags end up in shell history). */
async function readStdin(io: CliIo): Promise<string> {
  const input = io.stdin;
  if (!input) return '';
  let text = '';
  for await (const chunk of input) text += String(chunk);
  return text.replace(/\r?\n$/, '');
}

/**
 * `insitu login --email E [--password-stdin] [--url U] [--profile P]`: sign in and keep the
 * session for that URL in the profile file (mode 0600); later commands use it.
 */
export async function runLogin(
  options: RemoteOptions & Json & { email: string; passwordStdin?: boolean },
  io: CliIo,
): Promise<void> {
  const profileName = options.profile ?? 'default';
  const url = remoteUrl(options, io, readProfile(io, profileName).url);
  const password = options.passwordStdin ? await readStdin(io) : undefined;
  if (!password)
    throw new InsituError(
      'INSITU_USAGE',
      'give the password on standard input with --password-stdin (e.g. from a password manager)',
    );
  const api = new ApiClient(url, undefined);
  const session = await api.request<{ token: string; expiresAt: string; user: User }>('POST', '/api/v1/sessions', {
    email: options.email,
    password,
  });
  const file = await updateProfile(io, profileName, (profile) => {
    profile.url = url;
    profile.sessions[url] = { token: session.token, email: session.user.email, expiresAt: session.expiresAt };
  });
  if (options.json)
    line(
      io.stdout,
      JSON.stringify({ url, profile: profileName, user: session.user, expiresAt: session.expiresAt, file }),
    );
  else
    line(
      io.stdout,
      `signed in to ${url} as ${session.user.email} until ${session.expiresAt} (profile ${profileName}, ${file})`,
    );
}

/** `insitu logout [--url U] [--profile P]`: revoke the session on the platform and forget it. */
export async function runLogout(options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const profileName = options.profile ?? 'default';
  const profile = readProfile(io, profileName);
  const url = remoteUrl(options, io, profile.url);
  const session = sessionFor(profile, url);
  if (session) {
    try {
      await new ApiClient(url, session.token).request('DELETE', '/api/v1/sessions/current');
    } catch (error) {
      // Forgetting it locally is what was asked; an unreachable or already-expired session does not stop that.
      if (!(error instanceof InsituError) || !['INSITU_UNAUTHENTICATED', 'INSITU_REMOTE'].includes(error.code))
        throw error;
    }
  }
  await updateProfile(io, profileName, (p) => {
    delete p.sessions[url];
  });
  if (options.json) line(io.stdout, JSON.stringify({ url, profile: profileName, signedOut: Boolean(session) }));
  else line(io.stdout, session ? `signed out of ${url}` : `no session for ${url} in profile ${profileName}`);
}

/** `insitu org list`. */
export async function runOrgList(options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const orgs = await listAll<{ id: string; name: string; displayName: string; kind: string; status: string }>(
    api,
    '/api/v1/orgs',
  );
  printItems(io, options.json, orgs, {
    id: (o) => o.id,
    name: (o) => o.name,
    status: (o) => o.status,
    kind: (o) => o.kind,
    'display name': (o) => o.displayName,
  });
}

/** `insitu org create NAME [--display-name D]` (platform admins). */
export async function runOrgCreate(
  name: string,
  options: RemoteOptions & Json & { displayName?: string },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const org = await api.request<{ id: string; name: string }>('POST', '/api/v1/orgs', {
    name,
    ...(options.displayName ? { displayName: options.displayName } : {}),
  });
  if (options.json) line(io.stdout, JSON.stringify(org));
  else line(io.stdout, `created organisation ${org.name} (${org.id})`);
}

/** `insitu org show ORG`. */
export async function runOrgShow(ref: string, options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  printObject(
    io,
    options.json,
    await api.request<Record<string, unknown>>('GET', `/api/v1/orgs/${await orgIdOf(api, ref)}`),
  );
}

/** `insitu user me`: who this session is, with organisations and roles. */
export async function runUserMe(options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const me = await api.request<{
    user: User;
    platformAdmin: boolean;
    memberships: Array<{ orgName: string; roles: string[] }>;
  }>('GET', '/api/v1/users/me');
  if (options.json) {
    line(io.stdout, JSON.stringify(me));
    return;
  }
  line(io.stdout, `${me.user.email} (${me.user.id})${me.platformAdmin ? ', platform administrator' : ''}`);
  for (const m of me.memberships) line(io.stdout, `  ${m.orgName}: ${m.roles.join(', ')}`);
}

/** `insitu user list` (platform admins). */
export async function runUserList(options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const users = await listAll<User>(api, '/api/v1/users');
  printItems(io, options.json, users, {
    id: (u) => u.id,
    email: (u) => u.email,
    status: (u) => u.status,
    name: (u) => u.name,
  });
}

interface Member {
  user: User;
  roles: string[];
}

/** `insitu member list ORG`. */
export async function runMemberList(org: string, options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const members = await listAll<Member>(api, `/api/v1/orgs/${await orgIdOf(api, org)}/members`);
  printItems(io, options.json, members, { user: (m) => m.user.id, email: (m) => m.user.email, roles: (m) => m.roles });
}

/**
 * `insitu member add ORG EMAIL --role R… [--password-stdin]`: add a user (created when new;
 * with a password read from stdin, or none: they sign up or an admin resets it) with roles.
 */
export async function runMemberAdd(
  org: string,
  email: string,
  options: RemoteOptions & Json & { role: string[]; name?: string; passwordStdin?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  if (options.role.length === 0)
    throw new InsituError('INSITU_USAGE', 'give at least one --role (admin, provider, developer, user)');
  const password = options.passwordStdin ? await readStdin(io) : undefined;
  const member = await api.request<Member>('POST', `/api/v1/orgs/${await orgIdOf(api, org)}/members`, {
    email,
    roles: options.role,
    ...(options.name ? { name: options.name } : {}),
    ...(password ? { password } : {}),
  });
  if (options.json) line(io.stdout, JSON.stringify(member));
  else line(io.stdout, `${member.user.email} (${member.user.id}) is ${member.roles.join(', ')} in ${org}`);
}

/** `insitu member remove ORG EMAIL|USER_ID`. */
export async function runMemberRemove(
  org: string,
  who: string,
  options: RemoteOptions & Json,
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const orgId = await orgIdOf(api, org);
  let userId = who;
  if (who.includes('@')) {
    const found = (await listAll<Member>(api, `/api/v1/orgs/${orgId}/members`)).find(
      (m) => m.user.email.toLowerCase() === who.toLowerCase(),
    );
    if (!found) throw new InsituError('INSITU_USER_NOT_FOUND', `${who} is not a member of ${org}`);
    userId = found.user.id;
  }
  await api.request('DELETE', `/api/v1/orgs/${orgId}/members/${userId}`);
  if (options.json) line(io.stdout, JSON.stringify({ orgId, userId, removed: true }));
  else line(io.stdout, `removed ${who} from ${org}`);
}
