import { connectMember, sqlErrorInfo, type MemberConnection, type MemberEndpoint } from './sql.js';

/** The default replication connection of a member (`SHOW ALL SLAVES STATUS`, connection name ''). */
export interface ReplicationStatus {
  masterHost: string;
  masterPort: number;
  /** `Yes`, `No` or `Connecting`. */
  ioRunning: string;
  sqlRunning: string;
  lastIoErrno: number;
  lastIoError: string;
  lastSqlErrno: number;
  lastSqlError: string;
  secondsBehindMaster: number | null;
  /** GTID position received by the IO thread. */
  gtidIoPos: string;
  usingGtid: string;
  masterLogFile: string;
  readMasterLogPos: number;
  receivedHeartbeats: number;
  heartbeatPeriod: number;
  connectRetry: number;
  sqlState: string;
  ioState: string;
}

/** Semi-synchronous replication settings and state of a member. */
export interface SemiSyncStatus {
  masterEnabled: boolean;
  /** ON while the primary waits for replica acknowledgements; OFF after falling back to asynchronous. */
  masterStatus: boolean;
  masterClients: number;
  /** Commits that were not acknowledged by any replica. */
  masterNoTx: number;
  slaveEnabled: boolean;
  slaveStatus: boolean;
  waitPoint: string;
  timeoutMs: number;
}

/** What one probe of one member found. */
export interface MemberProbe {
  at: number;
  ok: boolean;
  latencyMs: number;
  error?: {
    message: string;
    code?: string;
    errno?: number;
    /** The member's port refused the connection: its process is down (not a network problem). */
    refused: boolean;
  };
  serverId?: number;
  version?: string;
  readOnly?: boolean;
  gtidBinlogPos?: string;
  gtidSlavePos?: string;
  gtidCurrentPos?: string;
  gtidStrictMode?: boolean;
  slaveNetTimeout?: number;
  /** The default replication connection, absent when the member replicates from nobody. */
  replication?: ReplicationStatus;
  semiSync?: SemiSyncStatus;
}

function num(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

function str(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean'
    ? String(value)
    : JSON.stringify(value);
}

function on(value: unknown): boolean {
  return value === 1 || value === '1' || value === 'ON' || value === 'on' || value === true;
}

/** Map a `SHOW ALL SLAVES STATUS` row. */
export function replicationFromRow(row: Record<string, unknown>): ReplicationStatus {
  const behind = row['Seconds_Behind_Master'];
  return {
    masterHost: str(row['Master_Host']),
    masterPort: num(row['Master_Port']),
    ioRunning: str(row['Slave_IO_Running']),
    sqlRunning: str(row['Slave_SQL_Running']),
    lastIoErrno: num(row['Last_IO_Errno']),
    lastIoError: str(row['Last_IO_Error']),
    lastSqlErrno: num(row['Last_SQL_Errno']),
    lastSqlError: str(row['Last_SQL_Error']),
    secondsBehindMaster: behind === null || behind === undefined ? null : num(behind),
    gtidIoPos: str(row['Gtid_IO_Pos']),
    usingGtid: str(row['Using_Gtid']),
    masterLogFile: str(row['Master_Log_File']),
    readMasterLogPos: num(row['Read_Master_Log_Pos']),
    receivedHeartbeats: num(row['Slave_received_heartbeats']),
    heartbeatPeriod: num(row['Slave_heartbeat_period']),
    connectRetry: num(row['Connect_Retry']),
    sqlState: str(row['Slave_SQL_Running_State']),
    ioState: str(row['Slave_IO_State']),
  };
}

/** Read the replication connection named '' of a member, if it has one. */
export async function readReplication(connection: MemberConnection): Promise<ReplicationStatus | undefined> {
  const rows = await connection.query('SHOW ALL SLAVES STATUS');
  const row = rows.find((r) => str(r['Connection_name']) === '');
  return row === undefined ? undefined : replicationFromRow(row);
}

async function readSemiSync(connection: MemberConnection): Promise<SemiSyncStatus> {
  const variables = new Map(
    (await connection.query("SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'")).map((r) => [
      str(r['Variable_name']).toLowerCase(),
      r['Value'],
    ]),
  );
  const status = new Map(
    (await connection.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'")).map((r) => [
      str(r['Variable_name']).toLowerCase(),
      r['Value'],
    ]),
  );
  return {
    masterEnabled: on(variables.get('rpl_semi_sync_master_enabled')),
    masterStatus: on(status.get('rpl_semi_sync_master_status')),
    masterClients: num(status.get('rpl_semi_sync_master_clients')),
    masterNoTx: num(status.get('rpl_semi_sync_master_no_tx')),
    slaveEnabled: on(variables.get('rpl_semi_sync_slave_enabled')),
    slaveStatus: on(status.get('rpl_semi_sync_slave_status')),
    waitPoint: str(variables.get('rpl_semi_sync_master_wait_point')),
    timeoutMs: num(variables.get('rpl_semi_sync_master_timeout')),
  };
}

/** Connection errors that mean "nothing listens on that port": the process is down. */
const REFUSED = new Set(['ECONNREFUSED']);

/**
 * Probe one member: connect with a short timeout, then server id, GTID positions,
 * `read_only` (on its own: inside a multi-column query it has come back wrong),
 * replication status and semi-sync state. Never throws: a failure is a probe with `ok: false`.
 */
export async function probeMember(
  endpoint: MemberEndpoint,
  options: { connectTimeoutMs: number; queryTimeoutMs: number },
  now: () => number = Date.now,
): Promise<MemberProbe> {
  const at = now();
  let connection: MemberConnection | undefined;
  try {
    connection = await connectMember(endpoint, options);
    const server = await connection.one(
      'SELECT @@server_id AS serverId, @@version AS version, @@gtid_binlog_pos AS binlogPos, @@gtid_slave_pos AS slavePos, ' +
        '@@gtid_current_pos AS currentPos, @@gtid_strict_mode AS strictMode, @@slave_net_timeout AS netTimeout',
    );
    const readOnly = await connection.one('SELECT @@global.read_only AS ro');
    const replication = await readReplication(connection);
    const semiSync = await readSemiSync(connection);
    return {
      at,
      ok: true,
      latencyMs: now() - at,
      serverId: num(server?.['serverId']),
      version: str(server?.['version']),
      readOnly: on(readOnly?.['ro']),
      gtidBinlogPos: str(server?.['binlogPos']),
      gtidSlavePos: str(server?.['slavePos']),
      gtidCurrentPos: str(server?.['currentPos']),
      gtidStrictMode: on(server?.['strictMode']),
      slaveNetTimeout: num(server?.['netTimeout']),
      ...(replication === undefined ? {} : { replication }),
      semiSync,
    };
  } catch (error) {
    const info = sqlErrorInfo(error);
    return {
      at,
      ok: false,
      latencyMs: now() - at,
      error: {
        message: info.message,
        ...(info.code === undefined ? {} : { code: info.code }),
        ...(info.errno === undefined ? {} : { errno: info.errno }),
        refused: info.code !== undefined && REFUSED.has(info.code),
      },
    };
  } finally {
    await connection?.close();
  }
}
