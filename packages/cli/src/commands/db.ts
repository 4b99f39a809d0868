import { InsituError, readEnvVar } from '@insitu/core';
import { DbAdminClient, findLeaderUrl, resolveSecrets, type ClusterStatus } from '@insitu/dbmanager';
import { line, type CliIo } from '../io.js';
import { coordinatorFor, dbManagerConfigFile, loadCliDbManagerConfig } from './dbmanager.js';

export interface DbCommandOptions {
  config?: string;
  url?: string;
  token?: string;
  json?: boolean;
}

/**
 * Reach the elected manager: `--url` (or `INSITU_DBMANAGER_URL`) names a manager directly
 * (commands sent to a follower are passed on to the leader); otherwise the leader is
 * looked up in the coord store that the dbmanager config names. The token comes from
 * `--token`, `INSITU_DBMANAGER_TOKEN` or the config's admin.token/tokenFile.
 */
export async function dbClient(options: DbCommandOptions, io: CliIo): Promise<DbAdminClient> {
  const file = dbManagerConfigFile(options, io, false);
  const config = file === undefined ? undefined : loadCliDbManagerConfig(file, io);
  const token =
    options.token ??
    (config
      ? resolveSecrets(config, io.env).adminToken
      : (readEnvVar('INSITU_DBMANAGER_TOKEN', io.env) as string | undefined));
  if (token === undefined)
    throw new InsituError(
      'INSITU_USAGE',
      'no admin token: pass --token, set INSITU_DBMANAGER_TOKEN, or give the dbmanager config (--config)',
    );
  const explicit = options.url ?? io.env.INSITU_DBMANAGER_URL;
  if (explicit) return new DbAdminClient({ url: explicit, token });
  if (config === undefined)
    throw new InsituError(
      'INSITU_USAGE',
      'pass --url of a dbmanager, or its config (--config / INSITU_DBMANAGER_CONFIG) to find the elected one',
    );
  if (config.coord.kind !== 'etcd')
    throw new InsituError(
      'INSITU_USAGE',
      'with coord.kind memory the manager cannot be looked up from another process; pass --url',
    );
  const coordinator = await coordinatorFor(config);
  try {
    return new DbAdminClient({ url: await findLeaderUrl(coordinator, config.cluster), token });
  } finally {
    await coordinator.close({ revokeLeases: false });
  }
}

function printStatus(status: ClusterStatus, io: CliIo): void {
  line(
    io.stdout,
    `cluster ${status.cluster}: primary ${status.primary ?? '(unknown)'}, epoch ${status.epoch}; manager ${status.manager.id}${status.manager.leader ? ' (leader)' : `, leader ${status.manager.leaderId ?? 'none'}`}`,
  );
  if (status.cooldown.active)
    line(
      io.stdout,
      `  failover cooldown until ${status.cooldown.until ?? '?'} (last failover ${status.cooldown.lastFailoverAt ?? '?'}); \`insitu db ack\` ends it`,
    );
  for (const member of status.members) {
    const replication = member.replication;
    const repl = replication
      ? ` from ${replication.source} IO ${replication.io} SQL ${replication.sql} lag ${replication.lagSeconds ?? '-'}s`
      : '';
    const error =
      replication?.lastSqlError || replication?.lastIoError || (member.reachable ? '' : (member.lastError ?? ''));
    line(
      io.stdout,
      `  ${member.name.padEnd(12)} ${member.role.padEnd(11)} ${member.reachable ? (member.readOnly ? 'read-only' : 'writable ') : 'DOWN     '} gtid ${member.gtid.current ?? '-'}${repl}${error ? `  ! ${error}` : ''}`,
    );
  }
  for (const q of status.quarantined)
    line(io.stdout, `  QUARANTINED ${q.name}: ${q.reason}; errant GTIDs ${q.errantGtids.join(', ')}`);
  for (const alert of status.alerts)
    line(
      io.stdout,
      `  alert ${alert.severity} ${alert.condition}${alert.subject ? ` ${alert.subject}` : ''}: ${alert.summary}`,
    );
  const recent = status.events.slice(-10);
  if (recent.length > 0) line(io.stdout, '  last actions:');
  for (const event of recent) line(io.stdout, `    ${event.at} ${event.type}: ${event.message}`);
}

/** `insitu db status`: topology, roles, GTID positions, lag, alerts and the last actions. */
export async function runDbStatus(options: DbCommandOptions, io: CliIo): Promise<void> {
  const client = await dbClient(options, io);
  const status = await client.status();
  if (options.json) line(io.stdout, JSON.stringify(status));
  else printStatus(status, io);
}

/** `insitu db switchover --to MEMBER`: planned switchover, refused when the target is not healthy. */
export async function runDbSwitchover(options: DbCommandOptions & { to: string }, io: CliIo): Promise<void> {
  const client = await dbClient(options, io);
  const result = await client.switchover(options.to);
  if (options.json) line(io.stdout, JSON.stringify(result));
  else
    line(
      io.stdout,
      `switched over ${result.from} → ${result.to} at ${result.gtid || '(empty GTID)'}; writes refused for ${result.readOnlyMs} ms; epoch ${result.epoch}`,
    );
}

/** `insitu db ack`: acknowledge the last failover, ending the cooldown. */
export async function runDbAck(options: DbCommandOptions & { by?: string }, io: CliIo): Promise<void> {
  const client = await dbClient(options, io);
  const result = await client.ack(options.by);
  if (options.json) line(io.stdout, JSON.stringify(result));
  else
    line(
      io.stdout,
      result.cooldownWasActive
        ? 'acknowledged: automatic failover is allowed again'
        : 'acknowledged (no cooldown was active)',
    );
}
