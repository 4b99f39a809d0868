import { randomBytes } from 'node:crypto';
import {
  InsituError,
  generateSecret,
  hashPassword,
  hashSecret,
  verifyPassword,
  type PasswordKdfCost,
} from '@insitu/core';
import { isUniqueViolation, type OrgRow, type Repositories, type Role, type Store, type UserRow } from '@insitu/store';

/** A freshly issued bearer session; `token` exists only in this object. */
export interface IssuedSession {
  token: string;
  expiresAt: number;
  user: UserRow;
}

// A hash of a random password, compared against when the email is unknown, so a
// failed sign-in takes as long whether or not the account exists.
let decoyHash: Promise<string> | undefined;

/** Issue a session for `user`. */
export async function issueSession(repos: Repositories, user: UserRow, ttlMs: number): Promise<IssuedSession> {
  const token = generateSecret('ses');
  const session = await repos.sessions.create({ userId: user.id, tokenHash: hashSecret(token), ttlMs });
  return { token, expiresAt: Number(session.expires_at), user };
}

/** Check email and password; a wrong email and a wrong password fail alike. */
export async function signIn(
  store: Store,
  email: string,
  password: string,
  ttlMs: number,
  cost: PasswordKdfCost,
): Promise<IssuedSession> {
  const user = await store.users.getByEmail(email);
  if (!user || user.status !== 'active') {
    decoyHash ??= hashPassword(generateSecret('decoy'), cost);
    await verifyPassword(password, await decoyHash);
    throw new InsituError('INSITU_BAD_CREDENTIALS', 'wrong email or password');
  }
  if (!(await verifyPassword(password, user.password_hash)))
    throw new InsituError('INSITU_BAD_CREDENTIALS', 'wrong email or password');
  return issueSession(store, user, ttlMs);
}

/** Create an organisation, turning a duplicate name into `INSITU_CONFLICT`. */
export async function createOrg(
  repos: Repositories,
  input: { name: string; displayName?: string; status: OrgRow['status']; kind?: OrgRow['kind'] },
): Promise<OrgRow> {
  try {
    return await repos.orgs.create({
      name: input.name,
      displayName: input.displayName ?? input.name,
      status: input.status,
      kind: input.kind ?? 'member',
    });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new InsituError('INSITU_CONFLICT', `an organisation named "${input.name}" exists already`);
    throw error;
  }
}

/** Create a user with a password, turning a duplicate email into `INSITU_CONFLICT`. */
export async function createUser(
  repos: Repositories,
  input: { email: string; name: string; password: string },
  cost: PasswordKdfCost,
): Promise<UserRow> {
  const passwordHash = await hashPassword(input.password, cost);
  try {
    return await repos.users.create({ email: input.email, name: input.name, passwordHash });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new InsituError('INSITU_CONFLICT', `a user with email ${input.email} exists already`);
    throw error;
  }
}

/**
 * Self-service sign-up: a new organisation (active or pending, by the platform's
 * sign-up mode) and its first user, who administers it.
 */
export async function signUp(
  store: Store,
  input: { org: { name: string; displayName?: string }; user: { email: string; name: string; password: string } },
  options: { mode: 'open' | 'approval' | 'closed'; cost: PasswordKdfCost; sessionTtlMs: number },
): Promise<{ org: OrgRow; session: IssuedSession }> {
  if (options.mode === 'closed')
    throw new InsituError(
      'INSITU_SIGNUP_CLOSED',
      'sign-up is closed on this platform; ask an administrator for an account',
    );
  const passwordHash = await hashPassword(input.user.password, options.cost);
  return store.transaction(async (tx) => {
    const org = await createOrg(tx, { ...input.org, status: options.mode === 'open' ? 'active' : 'pending' });
    let user: UserRow;
    try {
      user = await tx.users.create({ email: input.user.email, name: input.user.name, passwordHash });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new InsituError('INSITU_CONFLICT', `a user with email ${input.user.email} exists already`);
      throw error;
    }
    await tx.users.addRole(org.id, user.id, 'admin');
    const session = await issueSession(tx, user, options.sessionTtlMs);
    return { org, session };
  });
}

/** What {@link initPlatform} created; the password exists only here. */
export interface PlatformInit {
  org: OrgRow;
  admin: UserRow;
  password: string;
}

/**
 * Create the platform's own organisation and its first administrator, once. Throws
 * `INSITU_ALREADY_INITIALISED` if the platform organisation exists.
 */
export async function initPlatform(
  store: Store,
  input: { adminEmail: string; adminName?: string; password?: string },
  cost: PasswordKdfCost,
): Promise<PlatformInit> {
  const password = input.password ?? randomBytes(18).toString('base64url');
  const passwordHash = await hashPassword(password, cost);
  return store.transaction(async (tx) => {
    if (await tx.orgs.platform())
      throw new InsituError('INSITU_ALREADY_INITIALISED', 'the platform has an administrator already');
    const org = await createOrg(tx, {
      name: 'platform',
      displayName: 'Platform administration',
      status: 'active',
      kind: 'platform',
    });
    const admin = await tx.users.create({
      email: input.adminEmail,
      name: input.adminName ?? 'Administrator',
      passwordHash,
    });
    await tx.users.addRole(org.id, admin.id, 'admin');
    return { org, admin, password };
  });
}

/** Refuse a change that would leave an organisation without an admin. */
export async function guardLastAdmin(
  repos: Repositories,
  orgId: string,
  userId: string,
  newRoles: readonly Role[],
): Promise<void> {
  if (newRoles.includes('admin')) return;
  const current = await repos.users.memberships(userId);
  const isAdmin = current.some((m) => m.orgId === orgId && m.role === 'admin');
  if (isAdmin && (await repos.users.countWithRole(orgId, 'admin')) <= 1) {
    throw new InsituError(
      'INSITU_LAST_ADMIN',
      'this is the last administrator of the organisation; make someone else admin first',
    );
  }
}
