import { InsituError } from '@insitu/core';
import { createRequire } from 'node:module';
import type * as Etcd3Module from 'etcd3';
import type { Etcd3, IKeyValue, IOptions, Watcher } from 'etcd3';
import type { Engine, EngineEvent, GuardedOp, KvEntry } from './engine.js';

/** Options of the etcd engine. */
export interface EtcdEngineOptions {
  endpoints: readonly string[];
  /** Prefix for every key, e.g. `insitu/`; the coordinator's keys are relative to it. */
  namespace: string;
  dialTimeoutMs: number;
  /** Deadline of each unary call (range, put, txn, lease calls). */
  callTimeoutMs: number;
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  // A prefix of only 0xff bytes: everything after it.
  return Buffer.from([0]);
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** Exponential back-off for watch reconnects: 100 ms doubling up to 2 s. */
function watchBackoff(delayMs: number): WatchBackoff {
  return { duration: delayMs, next: () => watchBackoff(Math.min(delayMs * 2, 2000)) };
}

function unavailable(what: string, error: unknown): InsituError {
  return new InsituError('INSITU_COORD_UNAVAILABLE', `etcd ${what} failed: ${(error as Error).message}`, {
    cause: error,
  });
}

// etcd3 (with gRPC and protobuf, some 200 modules) is loaded when an etcd coordinator is made, not by every
// process that imports this package: a one-node platform or a CLI command never needs it.
const requireModule = createRequire(import.meta.url);
let etcd3Module: typeof Etcd3Module | undefined;
const etcd3 = (): typeof Etcd3Module => (etcd3Module ??= requireModule('etcd3') as typeof Etcd3Module);

/** The coordinator's primitives on etcd 3.4, through the `etcd3` client's raw RPCs. */
export class EtcdEngine implements Engine {
  readonly kind = 'etcd' as const;
  readonly #client: Etcd3;
  readonly #ns: string;
  readonly #callTimeoutMs: number;
  readonly #watchTimeoutMs: number;

  constructor(options: EtcdEngineOptions) {
    this.#ns = options.namespace;
    this.#callTimeoutMs = options.callTimeoutMs;
    this.#watchTimeoutMs = Math.max(5000, options.dialTimeoutMs + options.callTimeoutMs);
    const clientOptions: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: options.dialTimeoutMs,
      // A member that hangs (SIGSTOP, partition) must not hang unary calls: give each a
      // deadline. Streams (watch, keep-alive) live on and are handled by their owners.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.#callTimeoutMs }),
      // Re-establish a broken watch stream within 2 s (the client's default backs off to
      // 30 s, and its pending retry timers keep a closed client's process alive that long).
      faultHandling: { watchBackoff: watchBackoff(100) },
    };
    this.#client = new (etcd3().Etcd3)(clientOptions);
  }

  #key(key: string): Buffer {
    return Buffer.from(this.#ns + key, 'utf8');
  }

  #entry(kv: IKeyValue): KvEntry {
    return {
      key: kv.key.toString('utf8').slice(this.#ns.length),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      lease: String(kv.lease),
    };
  }

  async get(key: string): Promise<KvEntry | undefined> {
    try {
      const response = await this.#client.kv.range({ key: this.#key(key) });
      const kv = response.kvs[0];
      return kv ? this.#entry(kv) : undefined;
    } catch (error) {
      throw unavailable('get', error);
    }
  }

  async range(prefix: string): Promise<{ entries: KvEntry[]; revision: number }> {
    const key = this.#key(prefix);
    try {
      const response = await this.#client.kv.range({ key, range_end: prefixEnd(key) });
      return { entries: response.kvs.map((kv) => this.#entry(kv)), revision: Number(response.header.revision) };
    } catch (error) {
      throw unavailable('range', error);
    }
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    try {
      await this.#client.kv.put({
        key: this.#key(key),
        value: Buffer.from(value, 'utf8'),
        ...(lease ? { lease } : {}),
      });
    } catch (error) {
      if (/requested lease not found/i.test((error as Error).message)) {
        throw new InsituError('INSITU_COORD_LEASE_LOST', `lease ${lease ?? ''} is not alive`, { cause: error });
      }
      throw unavailable('put', error);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#client.kv.deleteRange({ key: this.#key(key) });
    } catch (error) {
      throw unavailable('delete', error);
    }
  }

  async createIfAbsent(key: string, value: string, lease: string): Promise<KvEntry> {
    const raw = this.#key(key);
    try {
      const response = await this.#client.kv.txn({
        compare: [
          { key: raw, target: etcd3().CompareTarget.Create, result: etcd3().CompareResult.Equal, create_revision: 0 },
        ],
        success: [{ request_put: { key: raw, value: Buffer.from(value, 'utf8'), lease } }],
        failure: [{ request_range: { key: raw } }],
      });
      if (!response.succeeded) {
        const kv = response.responses[0]?.response_range.kvs[0];
        if (kv) return this.#entry(kv);
      }
      const stored = await this.get(key);
      if (!stored)
        throw new InsituError('INSITU_COORD_UNAVAILABLE', `etcd key ${key} vanished right after its creation`);
      return stored;
    } catch (error) {
      if (error instanceof InsituError) throw error;
      throw unavailable('create', error);
    }
  }

  async guarded(
    guardKey: string,
    createRevision: number,
    op: GuardedOp,
  ): Promise<{ succeeded: boolean; revision: number }> {
    const request =
      op.type === 'put'
        ? { request_put: { key: this.#key(op.key), value: Buffer.from(op.value, 'utf8') } }
        : { request_delete_range: { key: this.#key(op.key) } };
    try {
      const response = await this.#client.kv.txn({
        compare: [
          {
            key: this.#key(guardKey),
            target: etcd3().CompareTarget.Create,
            result: etcd3().CompareResult.Equal,
            create_revision: createRevision,
          },
        ],
        success: [request],
        failure: [],
      });
      return { succeeded: response.succeeded, revision: Number(response.header.revision) };
    } catch (error) {
      throw unavailable('fenced write', error);
    }
  }

  async watch(prefix: string, onEvent: (event: EngineEvent) => void): Promise<{ close(): Promise<void> }> {
    const watcher: Watcher = this.#client
      .watch()
      .prefix(this.#ns + prefix)
      .watcher();
    // The client retries a watch forever while etcd is down: bound the first attempt,
    // and cancel the watcher on failure so its retries stop too.
    watcher.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no watch within ${this.#watchTimeoutMs} ms`)), this.#watchTimeoutMs);
        watcher.once('connected', () => resolve());
      });
    } catch (error) {
      await watcher.cancel().catch(() => undefined);
      throw unavailable('watch', error);
    } finally {
      clearTimeout(timer);
    }
    watcher.on('put', (kv) => {
      const entry = this.#entry(kv);
      onEvent({ type: 'put', key: entry.key, value: entry.value, revision: entry.modRevision });
    });
    watcher.on('delete', (kv) => {
      onEvent({
        type: 'delete',
        key: kv.key.toString('utf8').slice(this.#ns.length),
        revision: Number(kv.mod_revision),
      });
    });
    // The client reconnects watches itself; the coordinator's periodic re-list covers
    // what a silently dead watch would miss (the 'error' listener above keeps an error
    // from crashing the process).
    return {
      close: async () => {
        await watcher.cancel().catch(() => undefined);
      },
    };
  }

  async leaseGrant(ttlMs: number): Promise<string> {
    try {
      const response = await this.#client.leaseClient.leaseGrant({ TTL: Math.max(1, Math.ceil(ttlMs / 1000)) });
      return String(response.ID);
    } catch (error) {
      throw unavailable('lease grant', error);
    }
  }

  async leaseKeepAlive(id: string): Promise<number> {
    let stream: Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>>;
    try {
      stream = await this.#client.leaseClient.leaseKeepAlive();
    } catch (error) {
      throw unavailable('lease keep-alive', error);
    }
    try {
      const response = await new Promise<{ TTL: string }>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no answer within ${this.#callTimeoutMs} ms`)),
          this.#callTimeoutMs,
        );
        stream.on('data', (data: { TTL: string }) => {
          clearTimeout(timer);
          resolve(data);
        });
        stream.on('error', (error: Error) => {
          clearTimeout(timer);
          reject(error);
        });
        stream.write({ ID: id });
      });
      return Number(response.TTL) * 1000;
    } catch (error) {
      throw unavailable('lease keep-alive', error);
    } finally {
      stream.on('error', () => undefined);
      stream.end();
    }
  }

  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.#client.leaseClient.leaseRevoke({ ID: id });
    } catch (error) {
      if (/requested lease not found/i.test((error as Error).message)) return;
      throw unavailable('lease revoke', error);
    }
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}
