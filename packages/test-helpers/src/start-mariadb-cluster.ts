import { randomBytes } from 'node:crypto';
import { waitFor } from '@insitu/core';
import { sqlString } from './mariadb-sql.js';
import { startMariaDb, type MariaDbInstance, type MariaDbOptions } from './start-mariadb.js';

/** Options for {@link startMariaDbCluster}. */
export interface MariaDbClusterOptions {
  /** Number of servers; default 3. Member 1 is the primary, the others replicate from it. */
  members?: number;
  /** Database created on every member; default `insitu_test`. */
  database?: string;
  /**
   * Per-member options (index 0 is the primary), e.g. `netns` and `bindAddress`.
   * `serverId` and `readOnly` are always set by the cluster.
   */
  memberOptions?: (index: number) => MariaDbOptions;
  /** How long to wait for replication to run; default 30 s. */
  timeoutMs?: number;
}

/** A primary with GTID replicas, started by {@link startMariaDbCluster}. */
export interface MariaDbCluster {
  /** `members[0]` is the primary (read_only OFF); the others are read-only replicas. */
  readonly members: MariaDbInstance[];
  /** Account with REPLICATION SLAVE on every member (so any member can be promoted). */
  readonly replicationUser: string;
  readonly replicationPassword: string;
  /** Stop every member and delete its data. */
  stop(): Promise<void>;
}

async function stopAll(members: readonly MariaDbInstance[]): Promise<void> {
  const results = await Promise.allSettled(members.map((member) => member.stop()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}

/**
 * Start `members` MariaDB servers (server_id 1..n, one root password) where member 1 is
 * the primary and the others replicate from it with `MASTER_USE_GTID=slave_pos`,
 * 1 s connect retry and heartbeat, and `slave_net_timeout=3`. Resolves once every replica
 * shows `Slave_IO_Running: Yes` and `Slave_SQL_Running: Yes`.
 *
 * @example
 * const cluster = await startMariaDbCluster();
 * const [primary, replica] = cluster.members;
 * await primary.query('CREATE TABLE t (id INT PRIMARY KEY)');
 */
export async function startMariaDbCluster(options: MariaDbClusterOptions = {}): Promise<MariaDbCluster> {
  const count = options.members ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`members must be a positive integer, got ${count}`);
  const rootPassword = randomBytes(16).toString('hex');
  const replicationUser = 'repl';
  const replicationPassword = randomBytes(16).toString('hex');
  const timeoutMs = options.timeoutMs ?? 30_000;

  const started = await Promise.allSettled(
    Array.from({ length: count }, (_unused, index) => {
      const own = options.memberOptions?.(index) ?? {};
      return startMariaDb({
        rootPassword,
        ...(options.database === undefined ? {} : { database: options.database }),
        ...own,
        // Survives a restart, unlike SET GLOBAL: a cut-off primary is noticed in ~3 s, not 60 s.
        extraConfig: { slave_net_timeout: 3, ...own.extraConfig },
        serverId: index + 1,
        readOnly: index > 0,
      });
    }),
  );
  const members = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure !== undefined) {
    await stopAll(members);
    throw failure.reason;
  }

  try {
    const [primary, ...replicas] = members;
    if (primary === undefined) throw new Error('no primary started');
    await Promise.all(
      members.map((member) =>
        member.query(
          [
            // Not binlogged: each member gets the account itself, and replicas start from an empty binlog.
            'SET SESSION sql_log_bin = 0',
            `CREATE USER ${sqlString(replicationUser)}@'%' IDENTIFIED BY ${sqlString(replicationPassword)}`,
            `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${sqlString(replicationUser)}@'%'`,
          ].join(';\n'),
        ),
      ),
    );
    await Promise.all(
      replicas.map((replica) =>
        replica.query(
          [
            'SET GLOBAL slave_net_timeout = 3',
            `CHANGE MASTER TO MASTER_HOST=${sqlString(primary.host)}, MASTER_PORT=${primary.port}, ` +
              `MASTER_USER=${sqlString(replicationUser)}, MASTER_PASSWORD=${sqlString(replicationPassword)}, ` +
              'MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1',
            'START SLAVE',
          ].join(';\n'),
        ),
      ),
    );
    await Promise.all(
      replicas.map((replica) =>
        waitFor(
          async () => {
            const [status] = await replica.queryRows('SHOW SLAVE STATUS');
            if (status === undefined) throw new Error('SHOW SLAVE STATUS is empty');
            if (status['Slave_IO_Running'] === 'Yes' && status['Slave_SQL_Running'] === 'Yes') return true;
            // Thrown, not returned: waitFor puts the last error into its timeout message.
            throw new Error(
              `IO ${status['Slave_IO_Running'] ?? '?'} ${status['Last_IO_Error'] ?? ''}, ` +
                `SQL ${status['Slave_SQL_Running'] ?? '?'} ${status['Last_SQL_Error'] ?? ''}`,
            );
          },
          {
            timeoutMs,
            intervalMs: 25,
            what: `replica ${replica.serverId} (${replica.host}:${replica.port}) to replicate`,
          },
        ),
      ),
    );
  } catch (error) {
    await stopAll(members);
    throw error;
  }

  return {
    members,
    replicationUser,
    replicationPassword,
    stop: () => stopAll(members),
  };
}
