import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { Login } from './config.js';

/** Where a member is reached, and as whom. */
export interface MemberEndpoint {
  name: string;
  host: string;
  port: number;
  login: Login;
  /** A Unix socket to use instead of host and port (the guard, on the member's own machine). */
  socket?: string;
}

/** A short-lived admin connection to one member; every query has a deadline. */
export class MemberConnection {
  constructor(
    readonly member: string,
    private readonly connection: Connection,
    private readonly queryTimeoutMs: number,
  ) {}

  /** Run one statement with `?` placeholders (values escaped by the driver, never interpolated by us). */
  async query<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    values: unknown[] = [],
    timeoutMs = this.queryTimeoutMs,
  ): Promise<T[]> {
    const [rows] = await this.connection.query<RowDataPacket[]>({ sql, timeout: timeoutMs }, values);
    return Array.isArray(rows) ? (rows as unknown as T[]) : [];
  }

  /** The first row, or undefined. */
  async one<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    values: unknown[] = [],
    timeoutMs = this.queryTimeoutMs,
  ): Promise<T | undefined> {
    const rows = await this.query<T>(sql, values, timeoutMs);
    return rows[0];
  }

  /** The connection id on the server (to leave it out of KILL). */
  get threadId(): number | null {
    return this.connection.threadId;
  }

  /**
   * Say goodbye (COM_QUIT) but never wait long for it: on a partitioned member the answer
   * never comes, and a probe loop that waits for it stops probing. After 500 ms the socket
   * is destroyed.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.connection.end().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 500);
      }),
    ]);
    clearTimeout(timer);
    if (!ended) {
      const socket = (this.connection as unknown as { connection?: { stream?: { destroy(): void } } }).connection
        ?.stream;
      if (socket) socket.destroy();
      else this.connection.destroy();
    }
  }
}

/** Connect to a member with a short connect timeout. */
export async function connectMember(
  endpoint: MemberEndpoint,
  options: { connectTimeoutMs: number; queryTimeoutMs: number },
): Promise<MemberConnection> {
  const connection = await createConnection({
    ...(endpoint.socket === undefined ? { host: endpoint.host, port: endpoint.port } : { socketPath: endpoint.socket }),
    user: endpoint.login.user,
    password: endpoint.login.password,
    connectTimeout: options.connectTimeoutMs,
    // Numbers as numbers; BIGINT sequence numbers stay exact within 2^53.
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: true,
    multipleStatements: false,
  });
  // A failing server may emit errors after the query that failed; they are handled there.
  connection.on('error', () => undefined);
  return new MemberConnection(endpoint.name, connection, options.queryTimeoutMs);
}

/** Open, use, close. */
export async function withMember<T>(
  endpoint: MemberEndpoint,
  options: { connectTimeoutMs: number; queryTimeoutMs: number },
  fn: (connection: MemberConnection) => Promise<T>,
): Promise<T> {
  const connection = await connectMember(endpoint, options);
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

/** A driver error's code and number, when it has them. */
export function sqlErrorInfo(error: unknown): { code: string | undefined; errno: number | undefined; message: string } {
  const e = error as { code?: unknown; errno?: unknown; message?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    errno: typeof e.errno === 'number' ? e.errno : undefined,
    message: typeof e.message === 'string' ? e.message : String(error),
  };
}
