import { formatGtid, parseGtidPosition, type Gtid, type GtidPosition } from './gtid.js';
import { readReplication } from './probe.js';
import type { MemberConnection } from './sql.js';

/**
 * The SQL of each repair, one function per step, on an open admin connection. They do
 * not decide anything: the manager does, and checks its leadership between steps.
 */

/** Where and how a replica replicates from its primary. */
export interface ReplicationSource {
  host: string;
  port: number;
  user: string;
  password: string;
  heartbeatPeriodSeconds: number;
  connectRetrySeconds: number;
}

/** `CHANGE MASTER TO` the source with GTID and our timing; values are placeholders, escaped by the driver. */
async function changeMaster(connection: MemberConnection, source: ReplicationSource, demote: boolean): Promise<void> {
  await connection.query(
    'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, ' +
      'MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = ?, MASTER_HEARTBEAT_PERIOD = ?' +
      (demote ? ', MASTER_DEMOTE_TO_SLAVE = 1' : ''),
    [source.host, source.port, source.user, source.password, source.connectRetrySeconds, source.heartbeatPeriodSeconds],
  );
}

/** Keep the member from taking writes (clients without READ_ONLY ADMIN). */
export async function setReadOnly(connection: MemberConnection, readOnly: boolean): Promise<void> {
  await connection.query(readOnly ? 'SET GLOBAL read_only = 1' : 'SET GLOBAL read_only = 0');
}

/** The member's `@@global.read_only` as it is now: the check that a fence took effect. */
export async function readReadOnly(connection: MemberConnection): Promise<boolean> {
  const row = await connection.one<{ ro: number }>('SELECT @@global.read_only AS ro');
  return Number(row?.ro) === 1;
}

/**
 * Kill the client connections that could still write: everything but system threads,
 * replication threads (`Binlog Dump`), our own connection and the replication and
 * manager users. Returns how many were killed.
 */
export async function killClientConnections(
  connection: MemberConnection,
  spareUsers: readonly string[],
): Promise<number> {
  const rows = await connection.query<{ ID: number; USER: string; COMMAND: string }>(
    'SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()',
  );
  let killed = 0;
  for (const row of rows) {
    const command = String(row.COMMAND);
    if (
      command === 'Daemon' ||
      command.startsWith('Binlog Dump') ||
      command === 'Slave_IO' ||
      command === 'Slave_SQL' ||
      command === 'Slave_worker'
    )
      continue;
    const user = String(row.USER);
    if (user === 'system user' || user === 'event_scheduler' || user === '' || spareUsers.includes(user)) continue;
    try {
      await connection.query('KILL CONNECTION ?', [Number(row.ID)]);
      killed += 1;
    } catch {
      // Gone already.
    }
  }
  return killed;
}

/**
 * Wait until the member has applied up to `position` (`MASTER_GTID_WAIT`). Resolves true
 * when it has, false on timeout.
 */
export async function waitForGtid(connection: MemberConnection, position: string, timeoutMs: number): Promise<boolean> {
  if (position === '') return true;
  const row = await connection.one<{ r: number | null }>(
    'SELECT MASTER_GTID_WAIT(?, ?) AS r',
    [position, timeoutMs / 1000],
    timeoutMs + 5000,
  );
  return Number(row?.r) === 0;
}

/**
 * Stop the IO thread of a replica whose primary went silent, without the 2 s wait: a
 * semi-sync replica's `STOP SLAVE IO_THREAD` first connects to the primary to kill its dump
 * thread, and that connection waits up to `rpl_semi_sync_slave_kill_conn_timeout` (measured:
 * 2 s on a paused primary, whatever `slave_net_timeout` is; KILL of the IO thread first does
 * not shorten it). 1 s is that variable's shortest useful value (0 measured as 2 s again).
 */
export async function stopIoThreadNow(connection: MemberConnection): Promise<void> {
  await connection.query('SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = 1');
  await connection.query('STOP SLAVE IO_THREAD');
}

/** Stop replication and forget the old source: the member replicates from nobody. */
export async function detachReplica(connection: MemberConnection): Promise<void> {
  await connection.query('STOP ALL SLAVES');
  await connection.query('RESET SLAVE ALL');
}

/**
 * The semi-sync primary side off, before a member (re)starts replicating. A member that was
 * a primary keeps `rpl_semi_sync_master_enabled=ON` when it is demoted; as a replica with
 * `log_slave_updates` every transaction its SQL thread applies then waits for a semi-sync
 * acknowledgement no one sends — with `rpl_semi_sync_master_wait_no_slave=ON` and the
 * timeout at its maximum, for ever — and a `STOP SLAVE` on it waits behind that commit.
 * Switching it off also releases a commit already waiting there (it is in the member's
 * binlog: a replicated transaction, or, on a former primary, one the errant-GTID check saw).
 */
async function primarySideOff(connection: MemberConnection): Promise<void> {
  await connection.query('SET GLOBAL rpl_semi_sync_master_enabled = OFF');
}

/** Point a replica at `source` (GTID, slave_pos) and start it (semi-sync primary side off first). */
export async function repoint(connection: MemberConnection, source: ReplicationSource): Promise<void> {
  await primarySideOff(connection);
  await connection.query('STOP SLAVE');
  await changeMaster(connection, source, false);
  await connection.query('START SLAVE');
}

/**
 * Make a former primary a replica of `source`: read-only first, its semi-sync primary side
 * off (see {@link primarySideOff}), then `MASTER_DEMOTE_TO_SLAVE=1`, which moves its own
 * binlogged transactions into `gtid_slave_pos` so it resumes from where it really is (an
 * empty or stale `gtid_slave_pos` would only work by accident).
 */
export async function demoteToReplica(connection: MemberConnection, source: ReplicationSource): Promise<void> {
  await setReadOnly(connection, true);
  await primarySideOff(connection);
  await connection.query('STOP SLAVE');
  await changeMaster(connection, source, true);
  await connection.query('START SLAVE');
}

/** Stop both replication threads (a quarantined member, a caught-up candidate). */
export async function stopReplication(connection: MemberConnection): Promise<void> {
  await connection.query('STOP SLAVE');
}

/** Start both replication threads as configured. */
export async function startReplication(connection: MemberConnection): Promise<void> {
  await connection.query('START SLAVE');
}

/** Restart both replication threads (after an error). */
export async function restartReplication(connection: MemberConnection): Promise<void> {
  await connection.query('STOP SLAVE');
  await connection.query('START SLAVE');
}

/** Replica timing that survives nothing but a restart: `slave_net_timeout`. */
export async function setSlaveNetTimeout(connection: MemberConnection, seconds: number): Promise<void> {
  await connection.query('SET GLOBAL slave_net_timeout = ?', [seconds]);
}

/**
 * Configure AFTER_SYNC semi-synchronous replication for the member's role: the primary
 * waits for one replica to have a commit in its relay log before acknowledging it (for at
 * most `timeoutMs`, then it falls back to asynchronous); replicas acknowledge. The primary
 * side is on only on the primary: on a replica it would make every applied transaction
 * wait for acknowledgements that no one sends. A replica's side applies when its IO
 * thread (re)connects, so the IO thread is restarted when asked.
 */
export async function configureSemiSync(
  connection: MemberConnection,
  timeoutMs: number,
  role: 'primary' | 'replica' | 'async-primary',
  restartIo: boolean,
): Promise<void> {
  await connection.query("SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'");
  await connection.query('SET GLOBAL rpl_semi_sync_master_timeout = ?', [timeoutMs]);
  // With no semi-sync replica connected at all, still wait (the default OFF would switch to asynchronous at once).
  await connection.query('SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON');
  await connection.query('SET GLOBAL rpl_semi_sync_slave_enabled = ON');
  await connection.query(
    role === 'primary'
      ? 'SET GLOBAL rpl_semi_sync_master_enabled = ON'
      : 'SET GLOBAL rpl_semi_sync_master_enabled = OFF',
  );
  if (restartIo) {
    await connection.query('STOP SLAVE IO_THREAD');
    await connection.query('START SLAVE IO_THREAD');
  }
}

/** The replica's received (IO) GTID position, '' when it has none or no replication. */
export async function receivedPosition(connection: MemberConnection): Promise<string> {
  const status = await readReplication(connection);
  return status?.gtidIoPos ?? '';
}

/** The replica's applied position (`gtid_slave_pos`). */
export async function appliedPosition(connection: MemberConnection): Promise<string> {
  const row = await connection.one<{ p: string }>('SELECT @@gtid_slave_pos AS p');
  return String(row?.p ?? '');
}

/** How long this session's statements wait for a metadata lock (a switchover's `SET GLOBAL read_only`). */
export async function setLockWaitTimeout(connection: MemberConnection, seconds: number): Promise<void> {
  await connection.query('SET SESSION lock_wait_timeout = ?', [seconds]);
}

/** The member's own binlogged position. */
export async function binlogPosition(connection: MemberConnection): Promise<string> {
  const row = await connection.one<{ p: string }>('SELECT @@gtid_binlog_pos AS p');
  return String(row?.p ?? '');
}

/** The member's current position (binlog or applied, whichever is further). */
export async function currentPosition(connection: MemberConnection): Promise<string> {
  const row = await connection.one<{ p: string }>('SELECT @@gtid_current_pos AS p');
  return String(row?.p ?? '');
}

const GTID_EVENT = /GTID (\d+-\d+-\d+)/;
const GTID_LIST = /\[([\d,\s-]*)\]/;

/**
 * The exact GTIDs in a member's binlog beyond `base` (transactions the new primary never
 * had), read with `SHOW BINLOG EVENTS`, newest binlog first, stopping at the file whose
 * starting `Gtid_list` is within `base`. At most `limit` GTIDs are returned.
 */
export async function binlogGtidsBeyond(
  connection: MemberConnection,
  base: GtidPosition,
  limit = 1000,
): Promise<string[]> {
  const files = (await connection.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((row) => String(row.Log_name));
  const beyond = (gtid: Gtid) => {
    const b = base.get(gtid.domain);
    return b === undefined || gtid.seq > b.seq || (gtid.seq === b.seq && gtid.server !== b.server);
  };
  const found: string[] = [];
  for (const file of [...files].reverse()) {
    const events = await connection.query<{ Event_type: string; Info: string }>('SHOW BINLOG EVENTS IN ?', [file]);
    const inFile: string[] = [];
    let startsWithin = false;
    for (const event of events) {
      const type = String(event.Event_type);
      const info = String(event.Info ?? '');
      if (type === 'Gtid_list') {
        const list = GTID_LIST.exec(info)?.[1] ?? '';
        const start = parseGtidPosition(list.replace(/\s/g, ''));
        startsWithin = [...start.values()].every((gtid) => !beyond(gtid));
      } else if (type === 'Gtid') {
        const text = GTID_EVENT.exec(info)?.[1];
        if (text === undefined) continue;
        const gtid = parseGtidPosition(text).values().next().value;
        if (gtid !== undefined && beyond(gtid)) inFile.push(formatGtid(gtid));
      }
    }
    found.unshift(...inFile);
    if (startsWithin) break;
  }
  return found.slice(0, limit);
}
