import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { createLogger, loadConfig, type Logger } from '@insitu/core';
import { isUniqueViolation, openStore, type Store } from '@insitu/store';
import { startMariaDbCluster, type MariaDbCluster, type MariaDbOptions } from '@insitu/test-helpers';
import { DbManagerConfigSchema, type DbManagerConfig } from '../src/index.js';

/** What every member's my.cnf holds in production: start read-only, semi-sync replica side on (crash recovery truncates unacknowledged commits). */
export const MEMBER_CONFIG = {
  read_only: 'ON',
  rpl_semi_sync_slave_enabled: 'ON',
  rpl_semi_sync_master_wait_point: 'AFTER_SYNC',
} as const;

export const MANAGER_USER = 'insitu_manager';
export const MANAGER_PASSWORD = 'manager-password-1';

/**
 * The manager account's statements exactly as the README documents them (its ```sql block
 * creating `insitu_manager`), with the password filled in. `without` drops privileges
 * from the GRANT, to show what happens when one is missing.
 */
export function readmeManagerGrants(password = MANAGER_PASSWORD, without: readonly string[] = []): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .find((text) => text.includes(`'${MANAGER_USER}'`));
  if (block === undefined) throw new Error('the README has no sql block for the manager account');
  return block
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('--'))
    .map((line) => line.replace('MANAGER_PASSWORD', password).replace(/;$/, ''))
    .map((line) =>
      line.startsWith('GRANT ')
        ? without.reduce((text, privilege) => text.replace(new RegExp(`\\b${privilege}, |, ${privilege}\\b`), ''), line)
        : line,
    );
}

export const APP_USER = 'app';
export const APP_PASSWORD = 'app-password-1';
export const ADMIN_TOKEN = 'dbmanager-admin-token-for-tests';

/**
 * Three members (db1 primary), all with {@link MEMBER_CONFIG}, an application account
 * without READ_ONLY ADMIN, and the manager's account made with the README's statements
 * (less `managerWithout` privileges).
 */
export async function startTestCluster(
  memberOptions?: (index: number) => MariaDbOptions,
  managerWithout: readonly string[] = [],
): Promise<MariaDbCluster> {
  const cluster = await startMariaDbCluster({
    memberOptions: (index) => {
      const own = memberOptions?.(index) ?? {};
      return { ...own, extraConfig: { ...MEMBER_CONFIG, ...own.extraConfig } };
    },
  });
  const primary = cluster.members[0];
  if (primary === undefined) throw new Error('no primary');
  // The primary started read-only too: the manager makes it writable. Setup writes with sql_log_bin off on each member.
  await Promise.all(
    cluster.members.map((member) =>
      member.query(
        [
          'SET SESSION sql_log_bin = 0',
          `CREATE USER '${APP_USER}'@'%' IDENTIFIED BY '${APP_PASSWORD}'`,
          `GRANT ALL ON ${member.database}.* TO '${APP_USER}'@'%'`,
          ...readmeManagerGrants(MANAGER_PASSWORD, managerWithout),
        ].join('; '),
      ),
    ),
  );
  return cluster;
}

/** The manager's config for a test cluster: fast probes, given through config rather than sleeps. */
export function testConfig(
  cluster: MariaDbCluster,
  overrides: Record<string, unknown> = {},
  address?: (index: number) => { host: string; port: number },
): Readonly<DbManagerConfig> {
  const base: Record<string, unknown> = {
    members: cluster.members.map((member, index) => {
      const via = address?.(index);
      return {
        name: `db${index + 1}`,
        host: via?.host ?? member.host,
        port: via?.port ?? member.port,
        ...(via ? { replicationHost: member.host, replicationPort: member.port } : {}),
      };
    }),
    credentials: { user: MANAGER_USER, password: MANAGER_PASSWORD },
    replication: { user: cluster.replicationUser, password: cluster.replicationPassword },
    probe: { intervalMs: 200, connectTimeoutMs: 500, queryTimeoutMs: 2000 },
    detection: { failuresBeforeDown: 2, suspectIntervalMs: 100, replicaSilenceMs: 3000 },
    failover: { cooldownMs: 10 * 60_000, applyTimeoutMs: 10_000 },
    repair: { errorMemoryMs: 60_000, lagWarningSeconds: 1 },
    coord: { leaseTtlMs: 2000 },
    admin: { port: 0, token: ADMIN_TOKEN },
    notify: { groupWaitMs: 20, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 100 } },
    log: { level: process.env.DBM_TEST_LOG === '1' ? 'debug' : 'silent' },
  };
  return loadConfig(DbManagerConfigSchema, { base: deepMerge(base, overrides) });
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const current = out[key];
    out[key] =
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current) &&
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value)
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export function testLogger(): Logger {
  return createLogger({ name: 'dbmanager-test', level: process.env.DBM_TEST_LOG === '1' ? 'debug' : 'silent' });
}

/** A writer committing org rows one after the other, retrying each until acknowledged. */
export interface Writer {
  readonly acknowledged: readonly string[];
  readonly failures: number;
  readonly lastError: string | undefined;
  /** Time of the first acknowledged write that was issued after `since` (epoch ms), if any. */
  firstIssuedAfter(since: number): number | undefined;
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

export function startWriter(store: Store, prefix = 'w'): Writer {
  const acknowledged: string[] = [];
  const issued: Array<{ issuedAt: number; doneAt: number }> = [];
  let failures = 0;
  let lastError: string | undefined;
  let running = true;
  let paused: { resolve: () => void; promise: Promise<void> } | undefined;
  let idle: (() => void) | undefined;
  const done = (async () => {
    for (let i = 0; running; i++) {
      if (paused) {
        idle?.();
        await paused.promise;
      }
      const name = `${prefix}-${i}`;
      for (;;) {
        const issuedAt = Date.now();
        try {
          await store.orgs.create({ name, displayName: name, status: 'active' });
          acknowledged.push(name);
          issued.push({ issuedAt, doneAt: Date.now() });
          break;
        } catch (error) {
          // A retry of a write whose answer was lost in the failover finds it already there.
          if (isUniqueViolation(error)) {
            acknowledged.push(name);
            break;
          }
          failures += 1;
          lastError = (error as Error).message;
          if (process.env.DBM_TEST_LOG === '1') process.stderr.write(`writer: ${lastError}\n`);
          if (!running) return;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    }
  })();
  return {
    acknowledged,
    get failures() {
      return failures;
    },
    get lastError() {
      return lastError;
    },
    firstIssuedAfter(since) {
      return issued.find((entry) => entry.issuedAt >= since)?.doneAt;
    },
    async pause() {
      let resolve = () => undefined as void;
      const promise = new Promise<void>((r) => (resolve = r));
      const stopped = new Promise<void>((r) => (idle = r));
      paused = { resolve, promise };
      await stopped;
    },
    resume() {
      const current = paused;
      paused = undefined;
      idle = undefined;
      current?.resolve();
    },
    async stop() {
      running = false;
      this.resume();
      await done;
    },
  };
}

/** The platform's store as the application account, following the given primary source. */
export async function appStore(
  cluster: MariaDbCluster,
  primary: {
    current(): { host: string; port: number } | undefined;
    onChange(l: (a: { host: string; port: number }) => void): () => void;
  },
): Promise<Store> {
  const first = cluster.members[0];
  if (first === undefined) throw new Error('no member');
  const open = () =>
    openStore({
      kind: 'mysql',
      host: first.host,
      port: first.port,
      user: APP_USER,
      password: APP_PASSWORD,
      database: first.database,
      primary,
      poolSize: 4,
    });
  // Seen a few times in many runs, on a fresh cluster with semi-sync replicas: the first
  // migration's connection is closed by the server (PROTOCOL_CONNECTION_LOST). Open again.
  return open()
    .catch(() => open())
    .catch(() => open());
}

/** A TCP proxy in front of a member, to make it unreachable for the manager alone. */
export interface Proxy {
  readonly host: string;
  readonly port: number;
  /** New connections hang (no answer, like a partition); open ones are dropped. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (cut) return;
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no address');
  return {
    host: '127.0.0.1',
    port: address.port,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
      for (const socket of sockets) socket.destroy();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One look at every member: which ones answered `@@read_only = 0` to a client. */
export interface WritableSample {
  at: number;
  writable: string[];
}

/** Reads `@@global.read_only` on every member every `intervalMs` (~200 ms) over TCP, each answer bounded by a short timeout. */
export interface WritableSampler {
  readonly samples: readonly WritableSample[];
  /** Samples (from `since`, epoch ms) in which two or more members were writable. */
  splitBrain(since?: number): WritableSample[];
  stop(): Promise<void>;
}

export function startWritableSampler(
  cluster: MariaDbCluster,
  intervalMs = 200,
  address?: (index: number) => { host: string; port: number },
): WritableSampler {
  const samples: WritableSample[] = [];
  const connections = new Map<number, Connection>();
  let running = true;
  const readOne = async (index: number): Promise<boolean> => {
    const member = cluster.members[index];
    if (member === undefined) return false;
    try {
      let connection = connections.get(index);
      if (connection === undefined) {
        const via = address?.(index) ?? member;
        connection = await createConnection({
          host: via.host,
          port: via.port,
          user: APP_USER,
          password: APP_PASSWORD,
          connectTimeout: intervalMs,
        });
        connection.on('error', () => undefined);
        connections.set(index, connection);
      }
      const [rows] = await connection.query<RowDataPacket[]>({
        sql: 'SELECT @@global.read_only AS ro',
        timeout: intervalMs,
      });
      return Number(rows[0]?.['ro']) === 0;
    } catch {
      connections.get(index)?.destroy();
      connections.delete(index);
      return false;
    }
  };
  const done = (async () => {
    while (running) {
      const at = Date.now();
      const answers = await Promise.all(cluster.members.map((_m, index) => readOne(index)));
      samples.push({ at, writable: answers.flatMap((writable, index) => (writable ? [`db${index + 1}`] : [])) });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - at))));
    }
  })();
  return {
    samples,
    splitBrain(since = 0) {
      return samples.filter((s) => s.at >= since && s.writable.length > 1);
    },
    async stop() {
      running = false;
      await done;
      for (const connection of connections.values()) connection.destroy();
    },
  };
}
