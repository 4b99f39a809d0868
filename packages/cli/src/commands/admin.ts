import { randomBytes } from 'node:crypto';
import { InsituError, hashPassword } from '@insitu/core';
import { openStore } from '@insitu/store';
import { storeConfigFor } from '@insitu/server';
import { dataDirOf, loadCliServerConfig, requireExistingDatabase, type DataDirOptions } from '../data-dir.js';
import { line, type CliIo } from '../io.js';

/**
 * `insitu admin reset-password [--email E] [--data-dir D | --config F]`: a new password for a
 * user (default: the first platform administrator), straight on the platform database, so it
 * works when nobody can sign in any more. Printed once; the user's sessions are revoked.
 */
export async function runResetPassword(
  options: DataDirOptions & { email?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const dataDir = dataDirOf(options, io);
  const config = loadCliServerConfig(options, io, dataDir, {});
  const storeConfig = storeConfigFor(config, dataDir);
  requireExistingDatabase(storeConfig, dataDir);
  const store = await openStore(storeConfig, { migrate: false });
  try {
    let user;
    if (options.email) {
      user = await store.users.getByEmail(options.email);
      if (!user) throw new InsituError('INSITU_USER_NOT_FOUND', `no user ${options.email} on this platform`);
    } else {
      const platform = await store.orgs.platform();
      const admins = platform
        ? (await store.users.members(platform.id, { limit: 100, offset: 0 })).filter((m) => m.roles.includes('admin'))
        : [];
      user = admins[0]?.user;
      if (!user)
        throw new InsituError(
          'INSITU_NOT_INITIALISED',
          `the platform of ${dataDir} has no administrator; run: insitu init`,
        );
    }
    const password = randomBytes(18).toString('base64url');
    const passwordHash = await hashPassword(password, { N: 2 ** config.auth.passwordCost, r: 8, p: 1 });
    await store.users.update(user.id, { passwordHash });
    const revoked = await store.sessions.revokeAllOfUser(user.id);
    if (options.json)
      line(io.stdout, JSON.stringify({ email: user.email, userId: user.id, password, sessionsRevoked: revoked }));
    else {
      line(io.stdout, `new password for ${user.email}: ${password}`);
      line(io.stderr, `shown once; only its hash is stored. ${revoked} session(s) of ${user.email} revoked.`);
    }
  } finally {
    await store.close();
  }
}
