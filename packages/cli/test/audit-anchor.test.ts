import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rm, appendFile, writeFile } from 'node:fs/promises';
import { statSync, existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { waitFor } from '@insitu/core';
import { GENESIS_HASH, auditHash, openStore, type AuditInput, type Store } from '@insitu/store';
import { createEtcdCoordinator } from '@insitu/coord';
import { ANCHOR_COORD_PREFIX, ensureAnchorKey, signAnchor } from '@insitu/server';
import { makeTempDir, removeDir, startEtcd, type EtcdMember } from '@insitu/test-helpers';
import { run, start } from './helpers.js';

/*
 * Issue 16, item 10: an unkeyed chain in the database cannot notice someone who rewrites
 * it consistently, truncates or empties it (head row included), and a row forged at
 * seq <= 0 passed `insitu audit verify`. The server now signs chain heads with a key the
 * database does not hold and publishes them to coord, the anchor file and its log;
 * `insitu audit verify` checks every row and the newest anchor.
 */
const call = (n: number): AuditInput => ({
  ts: 1_700_000_000_000 + n,
  requestId: `req_${n}`,
  keyId: 'key_1',
  callerOrgId: 'org_caller',
  serviceId: 'svc_1',
  serviceOrgId: 'org_owner',
  serviceName: 'sales',
  version: '1.0.0',
  providerId: 'prv_1',
  agentId: 'agt_1',
  method: 'GET',
  status: 200,
  errorCode: '',
  bytesIn: 0,
  bytesOut: 10 + n,
  durationMs: 3,
});

async function withStore<T>(dataDir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ kind: 'sqlite', path: join(dataDir, 'platform.db') }, { migrate: false });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** What someone with write access to the database can do: change records and recompute every hash and the head. */
async function rewriteConsistently(store: Store, change: (seq: number) => Record<string, unknown>): Promise<void> {
  const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
  let prev = GENESIS_HASH;
  for (const row of rows) {
    const next = { ...row, ...change(Number(row.seq)), prev_hash: prev };
    next.hash = auditHash(prev, next);
    await store.db
      .updateTable('audit_log')
      .set({ ...change(Number(row.seq)), prev_hash: prev, hash: next.hash })
      .where('seq', '=', row.seq)
      .execute();
    prev = next.hash;
  }
  await store.db
    .updateTable('audit_head')
    .set({ seq: Number(rows.at(-1)?.seq ?? 0), hash: prev })
    .where('id', '=', 1)
    .execute();
}

async function verify(dataDir: string): Promise<{
  code: number;
  result: {
    ok: boolean;
    anchored: boolean;
    anchor?: { seq: number; source: string };
    ignored?: string[];
    firstBroken?: { seq: number; reason: string };
  };
}> {
  const out = await run(['audit', 'verify', '--data-dir', dataDir, '--json']);
  assert.equal(out.stderr, '');
  return { code: out.code, result: JSON.parse(out.stdout) };
}

describe('insitu audit verify against signed anchors', () => {
  let dir = '';
  let dataDir = '';
  let url = '';
  let token = '';
  let serverOutput = '';

  before(async () => {
    dir = await makeTempDir('insitu-audit-anchor-');
    dataDir = join(dir, 'platform');
  });
  after(async () => removeDir(dir));

  it('insitu init creates the anchor key (0600) and publishes its public half', async () => {
    const init = await run(['init', '--data-dir', dataDir, '--admin-email', 'root@example.test', '--json']);
    assert.equal(init.code, 0, init.stderr);
    const result = JSON.parse(init.stdout) as {
      admin: { password: string };
      auditAnchor: { keyFile: string; publicKeyFile: string; keyId: string };
    };
    assert.equal(result.auditAnchor.keyFile, join(dataDir, 'audit-anchor.key'));
    assert.equal(statSync(result.auditAnchor.keyFile).mode & 0o777, 0o600);
    assert.match(await readFile(result.auditAnchor.publicKeyFile, 'utf8'), /BEGIN PUBLIC KEY/);
    await appendFile(join(dataDir, 'config.yaml'), 'audit:\n  anchorIntervalMs: 100\n');
    token = result.admin.password;
  });

  it('the server signs the head into the anchor file, coord and its log, and once more on shutdown', async () => {
    const server = start(['server', '--data-dir', dataDir, '--port', '0', '--log-level', 'info']);
    let stopped = false;
    try {
      [, url = ''] = await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      const session = await fetch(`${url}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'root@example.test', password: token }),
      });
      token = ((await session.json()) as { token: string }).token;
      const key = (await (await fetch(`${url}/api/v1/audit/anchor-key`)).json()) as {
        keyId: string;
        publicKey: string;
      };
      assert.equal(
        key.publicKey,
        await readFile(join(dataDir, 'audit-anchor.key.pub'), 'utf8'),
        'the public key is served without a token',
      );

      await withStore(dataDir, (store) => store.transaction((tx) => tx.audit.append([1, 2, 3, 4, 5].map(call))));
      const anchored = await waitFor(
        async () => {
          const text = await readFile(join(dataDir, 'audit-anchor.json'), 'utf8').catch(() => '');
          const anchor = text ? (JSON.parse(text) as { seq: number; keyId: string; signature: string }) : undefined;
          return anchor?.seq === 5 ? anchor : undefined;
        },
        { timeoutMs: 10_000, what: 'an anchor of record 5 in the anchor file' },
      );
      assert.equal(anchored.keyId, key.keyId);
      const logged = server.output.stdout
        .split('\n')
        .filter((l) => l.includes('"audit head anchored"'))
        .map((l) => JSON.parse(l) as { auditAnchor: { seq: number; signature: string } });
      assert.ok(
        logged.some((l) => l.auditAnchor.seq === 5 && l.auditAnchor.signature === anchored.signature),
        'the same signed anchor is in the log stream',
      );

      const viaApi = await run(['audit', 'verify', '--url', url, '--token', token, '--json']);
      assert.equal(viaApi.code, 0, viaApi.stdout + viaApi.stderr);
      const api = JSON.parse(viaApi.stdout) as {
        ok: boolean;
        anchored: boolean;
        anchor: { seq: number; source: string };
      };
      assert.equal(api.anchored, true);
      assert.equal(api.anchor.seq, 5);

      // Records written after the last periodic anchor are anchored at shutdown.
      await withStore(dataDir, (store) => store.transaction((tx) => tx.audit.append([call(6)])));
      assert.equal(await server.stop(), 0);
      stopped = true;
      serverOutput = server.output.stdout;
      const last = JSON.parse(await readFile(join(dataDir, 'audit-anchor.json'), 'utf8')) as { seq: number };
      assert.equal(last.seq, 6);
    } finally {
      if (!stopped) await server.stop();
    }
    assert.doesNotMatch(serverOutput, /INSITU_AUDIT_BROKEN/);
  });

  it('an intact log verifies, with its anchor', async () => {
    const { code, result } = await verify(dataDir);
    assert.equal(code, 0);
    assert.equal(result.ok, true);
    assert.deepEqual([result.anchored, result.anchor?.seq, result.anchor?.source], [true, 6, 'file']);
    const human = await run(['audit', 'verify', '--data-dir', dataDir]);
    assert.match(human.stdout, /chain intact/);
    assert.match(human.stdout, /signed anchor: record 6 .* matches/);
  });

  const tamperings: Array<[string, (copy: string) => Promise<void>, RegExp]> = [
    [
      'a record forged at seq 0',
      (copy) =>
        withStore(copy, async (store) => {
          const first = await store.db
            .selectFrom('audit_log')
            .selectAll()
            .where('seq', '=', 1)
            .executeTakeFirstOrThrow();
          const forged = { ...first, seq: 0, id: 'aud_forged', request_id: 'req_forged', prev_hash: GENESIS_HASH };
          forged.hash = auditHash(GENESIS_HASH, forged);
          await store.db.insertInto('audit_log').values(forged).execute();
        }),
      /below 1/,
    ],
    [
      'a consistent rewrite of chain and head',
      (copy) => withStore(copy, (store) => rewriteConsistently(store, (seq) => (seq === 2 ? { status: 500 } : {}))),
      /rewritten/,
    ],
    [
      'a truncation with its head moved back',
      (copy) =>
        withStore(copy, async (store) => {
          await store.db.deleteFrom('audit_log').where('seq', '>', 3).execute();
          await rewriteConsistently(store, () => ({}));
        }),
      /truncated or emptied/,
    ],
    [
      'an emptied log, head and all',
      (copy) =>
        withStore(copy, async (store) => {
          await store.db.deleteFrom('audit_log').execute();
          await store.db.deleteFrom('audit_head').execute();
        }),
      /truncated or emptied/,
    ],
    [
      'an anchor file moved back to an earlier record',
      async (copy) => {
        const file = join(copy, 'audit-anchor.json');
        const anchor = JSON.parse(await readFile(file, 'utf8')) as { seq: number; hash: string };
        const third = await withStore(copy, (store) =>
          store.db.selectFrom('audit_log').select('hash').where('seq', '=', 3).executeTakeFirstOrThrow(),
        );
        await writeFile(file, JSON.stringify({ ...anchor, seq: 3, hash: third.hash }));
      },
      /signature that does not verify/,
    ],
    [
      'an anchor key replaced',
      async (copy) => {
        await rm(join(copy, 'audit-anchor.key'));
        const init = await run(['init', '--data-dir', join(copy, 'other')]);
        assert.equal(init.code, 0, init.stderr);
        await cp(join(copy, 'other', 'audit-anchor.key'), join(copy, 'audit-anchor.key'));
      },
      /does not trust/,
    ],
  ];
  for (const [name, tamper, reason] of tamperings) {
    it(`detects ${name}`, async () => {
      const copy = join(dir, name.replaceAll(' ', '-'));
      await cp(dataDir, copy, { recursive: true });
      await tamper(copy);
      const { code, result } = await verify(copy);
      assert.equal(code, 1, JSON.stringify(result));
      assert.equal(result.ok, false);
      assert.match(result.firstBroken?.reason ?? '', reason);
    });
  }

  it('a running server refuses to sign on from a rewritten log, and verify through the API says so', async () => {
    const copy = join(dir, 'live');
    await cp(dataDir, copy, { recursive: true });
    const server = start(['server', '--data-dir', copy, '--port', '0', '--log-level', 'info']);
    try {
      const [, liveUrl] = await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      await withStore(copy, (store) => rewriteConsistently(store, (seq) => (seq === 4 ? { bytes_out: 1 } : {})));
      await withStore(copy, (store) => store.transaction((tx) => tx.audit.append([call(7)])));
      await server.waitForOutput(/"code":"INSITU_AUDIT_BROKEN"/);
      const viaApi = await run(['audit', 'verify', '--url', liveUrl ?? '', '--token', token, '--json']);
      assert.equal(viaApi.code, 1);
      assert.match((JSON.parse(viaApi.stdout) as { firstBroken: { reason: string } }).firstBroken.reason, /rewritten/);
      assert.equal(
        (JSON.parse(await readFile(join(copy, 'audit-anchor.json'), 'utf8')) as { seq: number }).seq,
        6,
        'no anchor vouches for the rewritten log',
      );
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.ok(existsSync(join(copy, 'audit-anchor.json')));
  });
});

describe('audit anchors in etcd', () => {
  let dir = '';
  let etcd: EtcdMember | undefined;

  before(async () => {
    dir = await makeTempDir('insitu-audit-etcd-');
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
    await removeDir(dir);
  });

  it('a cluster node anchors in etcd, and insitu audit verify reads it there (with no anchor file left)', async () => {
    const dataDir = join(dir, 'node1');
    assert.equal((await run(['init', '--data-dir', dataDir, '--admin-email', 'root@example.test'])).code, 0);
    const namespace = `t-${Math.random().toString(36).slice(2, 8)}/`;
    // The cluster's shared key, made as docs/multi-node-install.md makes it.
    const sharedKey = join(dir, 'audit-anchor.key');
    await promisify(execFile)('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', sharedKey]);
    await appendFile(
      join(dataDir, 'config.yaml'),
      `audit:\n  anchorIntervalMs: 100\n  anchorKeyFile: ${sharedKey}\ncluster:\n  coordination: etcd\n  etcdEndpoints: ['${etcd?.endpoint ?? ''}']\n  etcdNamespace: ${namespace}\n  secret: a-cluster-secret-of-at-least-32-characters\n`,
    );
    const server = start(['server', '--data-dir', dataDir, '--port', '0', '--log-level', 'info']);
    const coord = createEtcdCoordinator({ endpoints: [etcd?.endpoint ?? ''], namespace });
    try {
      await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      await withStore(dataDir, (store) => store.transaction((tx) => tx.audit.append([1, 2, 3, 4].map(call))));
      await waitFor(
        async () =>
          [...(await coord.list(ANCHOR_COORD_PREFIX)).values()].some(
            (text) => (JSON.parse(text) as { seq?: number }).seq === 4,
          )
            ? true
            : undefined,
        {
          timeoutMs: 10_000,
          what: 'an anchor of record 4 in etcd',
        },
      );
    } finally {
      assert.equal(await server.stop(), 0);
      await coord.close();
    }
    await rm(join(dataDir, 'audit-anchor.json'));
    // Another node of the cluster that keeps its own key anchors beside it, under its key id: no false alarm here.
    const other = await ensureAnchorKey(join(dir, 'other-node.key'));
    const otherCoord = createEtcdCoordinator({ endpoints: [etcd?.endpoint ?? ''], namespace });
    try {
      const head = await withStore(dataDir, async (store) => store.audit.head());
      await otherCoord.put(
        `${ANCHOR_COORD_PREFIX}${other.key.keyId}`,
        JSON.stringify(signAnchor(other.key, head ?? { seq: 0, hash: GENESIS_HASH }, 'node2', Date.now())),
      );
    } finally {
      await otherCoord.close();
    }
    const intact = await verify(dataDir);
    assert.equal(intact.code, 0, JSON.stringify(intact.result));
    assert.deepEqual([intact.result.anchor?.seq, intact.result.anchor?.source], [4, 'coord']);
    assert.deepEqual(intact.result.ignored, [`${ANCHOR_COORD_PREFIX}${other.key.keyId}`]);
    await withStore(dataDir, async (store) => {
      await store.db.deleteFrom('audit_log').where('seq', '>', 2).execute();
      await rewriteConsistently(store, () => ({}));
    });
    const truncated = await verify(dataDir);
    assert.equal(truncated.code, 1);
    assert.match(truncated.result.firstBroken?.reason ?? '', /truncated or emptied/);
  });
});
