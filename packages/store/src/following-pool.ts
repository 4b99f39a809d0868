import type { MysqlPool, MysqlPoolConnection } from 'kysely';
import type { Pool, PoolConnection, PoolOptions } from 'mysql2';
import { mysql2 } from './mysql2.js';
import { databaseUnavailable } from './errors.js';

/** A primary's address. */
export interface PrimaryAddress {
  host: string;
  port: number;
}

/**
 * Where the current primary is, as an observable: the dbmanager publishes it in coord and
 * `@insitu/dbmanager`'s `followPrimary()` provides exactly this shape.
 */
export interface PrimarySource {
  current(): PrimaryAddress | undefined;
  /** Called with each new primary; returns an unsubscribe function. */
  onChange(listener: (address: PrimaryAddress) => void): () => void;
}

/**
 * How long connections to a former primary may finish their work before they are destroyed.
 * By the time a new primary is published the former one is read-only (switchover) or fenced
 * and unreachable (failover): a healthy one answers its in-flight queries in milliseconds, and a
 * paused or cut-off one never will, so every millisecond here is added to the first write after a
 * failover (2 s made the pause and partition faults miss their 5 s aim).
 */
const DRAIN_MS = 500;

/**
 * A Kysely MySQL pool whose connections go to whichever member is primary now. On a
 * change it opens a new mysql2 pool for the new address and retires the old one: its
 * connections get {@link DRAIN_MS} to finish, then their sockets are destroyed (a query
 * waiting on a partitioned former primary would otherwise never return). A caller that retries a failed write reaches the new primary without a restart.
 */
export class FollowingPool implements MysqlPool {
  #pool: Pool | undefined;
  #connections = new Set<PoolConnection>();
  #address: PrimaryAddress | undefined;
  readonly #unsubscribe: () => void;
  readonly #options: Omit<PoolOptions, 'host' | 'port'>;
  #closed = false;

  constructor(options: Omit<PoolOptions, 'host' | 'port'>, source: PrimarySource) {
    this.#options = options;
    const first = source.current();
    if (first !== undefined) this.#follow(first);
    this.#unsubscribe = source.onChange((address) => this.#follow(address));
  }

  /** The address new connections go to. */
  get address(): PrimaryAddress | undefined {
    return this.#address;
  }

  #follow(address: PrimaryAddress): void {
    if (this.#closed) return;
    if (this.#address !== undefined && this.#address.host === address.host && this.#address.port === address.port)
      return;
    const old = this.#pool;
    const oldConnections = this.#connections;
    this.#pool = mysql2().createPool({ ...this.#options, host: address.host, port: address.port });
    this.#connections = new Set();
    this.#address = address;
    if (old !== undefined) {
      const timer = setTimeout(() => {
        // Not connection.destroy(): mysql2 ends the socket gracefully and never fails a query
        // still waiting on a partitioned server. Destroying the socket fails it, so the caller retries.
        for (const connection of oldConnections) {
          (connection as unknown as { stream?: { destroy(error?: Error): void } }).stream?.destroy(
            Object.assign(new Error('the primary moved; this connection to the former primary was closed'), {
              code: 'PROTOCOL_CONNECTION_LOST',
            }),
          );
        }
        old.end(() => undefined);
      }, DRAIN_MS);
      timer.unref();
    }
  }

  getConnection(callback: (error: unknown, connection: MysqlPoolConnection) => void): void {
    const pool = this.#pool;
    if (pool === undefined || this.#closed) {
      const error = databaseUnavailable(this.#closed ? 'the store is closed' : 'no primary database is known yet');
      callback(error, undefined as unknown as MysqlPoolConnection);
      return;
    }
    const connections = this.#connections;
    pool.getConnection((error, connection) => {
      if (!error && !connections.has(connection)) {
        connections.add(connection);
        // A connection we fail on purpose (see #follow) must not crash the process with an unhandled 'error'.
        connection.on('error', () => undefined);
      }
      callback(error, connection);
    });
  }

  end(callback: (error: unknown) => void): void {
    this.#closed = true;
    this.#unsubscribe();
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool === undefined) {
      callback(undefined);
      return;
    }
    pool.end((error) => callback(error ?? undefined));
  }
}
