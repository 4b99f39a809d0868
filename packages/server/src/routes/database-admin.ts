import { readFileSync } from 'node:fs';
import { InsituError, isErrorCode } from '@insitu/core';
import Type from 'typebox';
import { userOf, type App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import type { ServerContext } from '../context.js';

const Closed = { additionalProperties: false } as const;

/** The dbmanager's admin token from `database.managerTokenFile` or `database.managerToken`. */
function managerToken(ctx: ServerContext): string | undefined {
  const { managerTokenFile, managerToken: token } = ctx.config.database;
  if (managerTokenFile) {
    try {
      return readFileSync(managerTokenFile, 'utf8').trim();
    } catch (error) {
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        `cannot read database.managerTokenFile: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return token;
}

/**
 * `POST /api/v1/cluster/database/switchover` and `POST /api/v1/cluster/database/ack`: the
 * planned switchover and the acknowledgement of a failover (what `insitu db switchover|ack`
 * do), for platform administrators, passed to the elected dbmanager's admin API with the
 * token this node is configured with (`database.managerToken`). The dbmanager is found the
 * way `insitu db` finds it: the leader of election `dbmanager.<cluster>` and its record
 * `dbmanager/<cluster>/managers/<id>` in coord (names repeated from
 * packages/dbmanager/src/topology.ts: the server may not import the dbmanager). Every
 * request is recorded in the event log under the administrator's id, whatever it answered.
 */
export function registerDatabaseAdminRoutes(app: App, ctx: ServerContext): void {
  const token = managerToken(ctx);
  const cluster = ctx.config.database.followPrimary;

  /**
   * The admin URL of the elected manager. A manager publishes its record under a lease
   * right after winning (and again after a lapse), so both are awaited up to 3 s.
   */
  async function leaderUrl(name: string): Promise<string> {
    const observer = await app.coordinator.observe(`dbmanager.${name}`);
    const deadline = Date.now() + 3000;
    let leader: string | undefined;
    try {
      for (;;) {
        leader = observer.leader();
        if (leader !== undefined) {
          const text = await app.coordinator.get(`dbmanager/${name}/managers/${leader}`);
          let adminUrl: unknown;
          try {
            adminUrl = text ? (JSON.parse(text) as { adminUrl?: unknown }).adminUrl : undefined;
          } catch {
            adminUrl = undefined;
          }
          if (typeof adminUrl === 'string' && /^https?:\/\//.test(adminUrl)) return adminUrl.replace(/\/+$/, '');
        }
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await observer.close();
    }
    throw new InsituError(
      'INSITU_DBMANAGER_NO_LEADER',
      leader === undefined
        ? `no dbmanager of cluster ${name} is elected`
        : `the elected dbmanager ${leader} has published no admin URL`,
    );
  }

  /** One command to the elected manager; a follower's "not the leader" is followed once. */
  async function command(path: string, body: unknown): Promise<Record<string, unknown>> {
    if (!cluster)
      throw new InsituError(
        'INSITU_CONFLICT',
        'this node follows no MySQL cluster (database.followPrimary): there is no dbmanager to ask',
      );
    if (!token)
      throw new InsituError(
        'INSITU_CONFLICT',
        "this node has no dbmanager admin token (database.managerToken or INSITU_DATABASE_MANAGER_TOKEN); use 'insitu db' instead",
      );
    let url = await leaderUrl(cluster);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(120_000),
        });
      } catch (error) {
        throw new InsituError('INSITU_DBMANAGER_NO_LEADER', `the dbmanager at ${url} did not answer`, {
          cause: error,
        });
      }
      const text = await response.text();
      let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } & Record<string, unknown>;
      try {
        parsed = (text ? JSON.parse(text) : {}) as typeof parsed;
      } catch {
        throw new InsituError(
          'INSITU_REMOTE',
          `the dbmanager answered ${response.status} with a body that is not JSON`,
        );
      }
      if (response.ok) return parsed;
      const code = parsed.error?.code;
      const next = (parsed.error?.details as { leaderUrl?: unknown } | undefined)?.leaderUrl;
      if (code === 'INSITU_DBMANAGER_NOT_LEADER' && typeof next === 'string' && attempt === 0) {
        url = next.replace(/\/+$/, '');
        continue;
      }
      const message = typeof parsed.error?.message === 'string' ? parsed.error.message : `HTTP ${response.status}`;
      if (response.status === 401 || response.status === 403)
        throw new InsituError('INSITU_CONFLICT', `the dbmanager refused this node's admin token: ${message}`);
      throw new InsituError(isErrorCode(code) ? code : 'INSITU_REMOTE', message);
    }
  }

  async function audited<T>(kind: string, by: string, what: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      await ctx.store.events.add({
        orgId: null,
        kind: `database.${kind}`,
        subject: cluster ?? 'none',
        message: `${what} by ${by}`,
        data: { by, result },
      });
      return result;
    } catch (error) {
      const reason = error instanceof InsituError ? `${error.code}: ${error.message}` : 'internal error';
      await ctx.store.events
        .add({
          orgId: null,
          kind: `database.${kind}-refused`,
          subject: cluster ?? 'none',
          message: `${what} by ${by} refused (${reason})`.slice(0, 4000),
          data: { by },
        })
        .catch((e: unknown) => ctx.logger.warn({ err: e }, 'could not record a refused database command'));
      throw error;
    }
  }

  app.post(
    '/api/v1/cluster/database/switchover',
    {
      config: { errors: [404, 409, 503] },
      schema: {
        tags: ['cluster'],
        summary:
          'Planned switchover of the platform database to another member (platform admins; asks the elected dbmanager, refused before anything changes when the target or the primary is not healthy enough; recorded in the event log)',
        body: Type.Object(
          { to: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$', description: 'Member name' }) },
          Closed,
        ),
        response: {
          200: Type.Object(
            {
              from: Type.String(),
              to: Type.String(),
              gtid: Type.String(),
              readOnlyMs: Type.Number(),
              epoch: Type.Integer(),
            },
            { additionalProperties: true },
          ),
        },
      },
    },
    async (request) => {
      const principal = userOf(request);
      requirePlatformAdmin(principal);
      const { to } = request.body;
      const result = await audited('switchover', principal.userId, `switchover to ${to}`, () =>
        command('/v1/switchover', { to }),
      );
      return result as { from: string; to: string; gtid: string; readOnlyMs: number; epoch: number };
    },
  );

  app.post(
    '/api/v1/cluster/database/ack',
    {
      config: { errors: [409, 503] },
      schema: {
        tags: ['cluster'],
        summary:
          "Acknowledge the last automatic failover: ends the dbmanager's cooldown so it may fail over again (platform admins; recorded in the event log)",
        body: Type.Object({}, Closed),
        response: {
          200: Type.Object({
            cooldownWasActive: Type.Boolean(),
            lastFailoverAt: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const principal = userOf(request);
      requirePlatformAdmin(principal);
      const result = await audited('ack', principal.userId, 'failover acknowledged', () =>
        command('/v1/ack', { by: principal.userId }),
      );
      return result as { cooldownWasActive: boolean; lastFailoverAt: string | null };
    },
  );
}
