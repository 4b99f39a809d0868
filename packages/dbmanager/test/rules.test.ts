import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InsituError, loadConfig } from '@insitu/core';
import {
  DbManagerConfigSchema,
  compareGtidPositions,
  defaultConfirmations,
  formatGtidPosition,
  formatGtidRange,
  gtidCovers,
  gtidRangesBeyond,
  judgePrimary,
  loadDbManagerConfig,
  parseGtidPosition,
  rankCandidates,
  type Candidate,
  type MemberConfig,
  type MemberProbe,
  type MemberView,
} from '../src/index.js';
import { MEMBER_CONFIG, readmeManagerGrants } from './support.js';

function member(name: string, extra: Partial<MemberConfig> = {}): MemberConfig {
  return { name, host: '127.0.0.1', port: 3306 + name.length, neverPromote: false, priority: 0, ...extra };
}

function replicaProbe(
  primary: MemberConfig,
  io: string,
  extra: Partial<NonNullable<MemberProbe['replication']>> = {},
): MemberProbe {
  return {
    at: 0,
    ok: true,
    latencyMs: 1,
    readOnly: true,
    replication: {
      masterHost: primary.host,
      masterPort: primary.port,
      ioRunning: io,
      sqlRunning: 'Yes',
      lastIoErrno: io === 'Yes' ? 0 : 2003,
      lastIoError: '',
      lastSqlErrno: 0,
      lastSqlError: '',
      secondsBehindMaster: 0,
      gtidIoPos: '0-1-10',
      usingGtid: 'Slave_Pos',
      masterLogFile: 'b.1',
      readMasterLogPos: 100,
      receivedHeartbeats: 3,
      heartbeatPeriod: 1,
      connectRetry: 1,
      sqlState: '',
      ioState: '',
      ...extra,
    },
  };
}

const down: MemberProbe = {
  at: 0,
  ok: false,
  latencyMs: 1,
  error: { message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', refused: true },
};

describe('GTID positions', () => {
  it('parses, formats and compares positions domain by domain', () => {
    const a = parseGtidPosition('0-1-100,1-3-7');
    assert.equal(formatGtidPosition(a), '0-1-100,1-3-7');
    assert.equal(parseGtidPosition('').size, 0);
    assert.throws(() => parseGtidPosition('0-1'), /not a GTID/);
    assert.ok(gtidCovers(parseGtidPosition('0-2-101,1-3-7'), a));
    assert.ok(!gtidCovers(parseGtidPosition('0-2-101'), a), 'a missing domain is not covered');
    assert.equal(compareGtidPositions(parseGtidPosition('0-1-101'), parseGtidPosition('0-1-100')), 1);
    assert.equal(compareGtidPositions(parseGtidPosition('0-1-100'), parseGtidPosition('0-1-100')), 0);
    assert.equal(compareGtidPositions(parseGtidPosition(''), parseGtidPosition('0-1-1')), -1);
  });

  it('finds what a returning primary holds beyond the promotion point, including a reused sequence number', () => {
    const base = parseGtidPosition('0-1-100');
    assert.deepEqual(gtidRangesBeyond(parseGtidPosition('0-1-100'), base), []);
    assert.deepEqual(gtidRangesBeyond(parseGtidPosition('0-1-99'), base), []);
    assert.deepEqual(gtidRangesBeyond(parseGtidPosition('0-1-103'), base).map(formatGtidRange), ['0-1-101..0-1-103']);
    assert.deepEqual(gtidRangesBeyond(parseGtidPosition('0-3-100'), base).map(formatGtidRange), ['0-3-100']);
    assert.deepEqual(gtidRangesBeyond(parseGtidPosition('0-1-100,5-1-2'), base).map(formatGtidRange), ['5-1-1..5-1-2']);
  });
});

describe('detection: a dead primary must be confirmed by the replicas', () => {
  const primary = member('db1');
  const options = { failuresBeforeDown: 2, replicaSilenceMs: 3000, minConfirmations: 2 };
  const view = (
    config: MemberConfig,
    probe: MemberProbe | undefined,
    failures = 0,
    ioSilentMs?: number,
  ): MemberView => ({
    name: config.name,
    config,
    probe,
    consecutiveFailures: failures,
    ioSilentMs,
  });

  it('is alive when the manager reaches it, suspect before the threshold', () => {
    assert.equal(judgePrimary(view(primary, { at: 0, ok: true, latencyMs: 1 }), [], options).state, 'alive');
    assert.equal(
      judgePrimary(view(primary, down, 1), [view(member('db2'), replicaProbe(primary, 'Connecting'))], options).state,
      'suspect',
    );
  });

  it('is dead when unreachable and every replica lost it (reconnecting, or silent past the timeout)', () => {
    const verdict = judgePrimary(
      view(primary, down, 2),
      [
        view(member('db2'), replicaProbe(primary, 'Connecting'), 0, 10),
        view(member('db3'), replicaProbe(primary, 'Yes'), 0, 5000),
      ],
      options,
    );
    assert.equal(verdict.state, 'dead');
    assert.deepEqual(verdict.confirmations.sort(), ['db2', 'db3']);
  });

  it('is not failed over while a replica still receives from it (unreachable from the manager only)', () => {
    const verdict = judgePrimary(
      view(primary, down, 5),
      [
        view(member('db2'), replicaProbe(primary, 'Yes'), 0, 500),
        view(member('db3'), replicaProbe(primary, 'Connecting'), 0, 10),
      ],
      options,
    );
    assert.equal(verdict.state, 'seen-by-replicas');
    assert.deepEqual(verdict.seeing, ['db2']);
  });

  it('is unconfirmed when a replica cannot vote (a partition could hide a live primary with it)', () => {
    const verdict = judgePrimary(
      view(primary, down, 5),
      [view(member('db2'), replicaProbe(primary, 'Connecting')), view(member('db3'), down, 5)],
      options,
    );
    assert.equal(verdict.state, 'unconfirmed');
    assert.deepEqual(verdict.unreachable, ['db3']);
  });

  it('a replica whose IO thread an administrator stopped (no error) is no witness', () => {
    const stopped = replicaProbe(primary, 'No', { lastIoErrno: 0 });
    const verdict = judgePrimary(
      view(primary, down, 5),
      [view(member('db2'), stopped), view(member('db3'), replicaProbe(primary, 'Connecting'))],
      options,
    );
    assert.equal(verdict.state, 'seen-by-replicas');
  });

  it('needs a majority of the members by default, at most the number of replicas', () => {
    assert.equal(defaultConfirmations(3), 2);
    assert.equal(defaultConfirmations(2), 1);
    assert.equal(defaultConfirmations(5), 3);
  });
});

describe('candidate ordering', () => {
  const candidate = (
    name: string,
    received: string,
    applied: string,
    extra: Partial<MemberConfig> = {},
    canApply = true,
  ): Candidate => ({
    name,
    config: member(name, extra),
    received,
    applied,
    canApply,
  });

  it('orders by received GTID, then applied GTID, then priority, excluding never-promote and broken replicas', () => {
    const { ranked, excluded } = rankCandidates([
      candidate('db2', '0-1-100', '0-1-100', { priority: 10 }),
      candidate('db3', '0-1-101', '0-1-99'),
      candidate('db4', '0-1-105', '0-1-105', { neverPromote: true }),
      candidate('db5', '0-1-106', '0-1-90', {}, false),
      candidate('db6', '0-1-101', '0-1-100'),
      candidate('db7', '0-1-101', '0-1-100', { priority: 5 }),
    ]);
    assert.deepEqual(
      ranked.map((c) => c.name),
      ['db7', 'db6', 'db3', 'db2'],
    );
    assert.deepEqual(excluded.map((e) => e.name).sort(), ['db4', 'db5']);
  });
});

describe('config', () => {
  const base = () => ({
    members: [
      { name: 'db1', host: '10.0.0.1' },
      { name: 'db2', host: '10.0.0.2' },
    ],
  });

  it('fills defaults and rejects misspelled options with the right name', () => {
    const config = loadDbManagerConfig({ base: base() });
    assert.equal(config.probe.intervalMs, 1000);
    assert.equal(config.members[0]?.port, 3306);
    assert.equal(config.semiSync.enabled, true);
    // Lossless by default: the server never falls back to asynchronous on its own, and the manager does not either.
    assert.equal(config.semiSync.timeoutMs, 4_294_967_295);
    assert.equal(config.semiSync.asyncWhenAloneMs, undefined);
    assert.equal(config.coord.namespace, 'insitu/');
    assert.equal(config.guard.member, undefined);
    assert.throws(
      () => loadDbManagerConfig({ base: { ...base(), probe: { intervalMS: 5 } } }),
      (error: unknown) =>
        error instanceof InsituError &&
        error.code === 'INSITU_CONFIG_INVALID' &&
        /did you mean "probe.intervalMs"/.test(error.message),
    );
  });

  it('rejects duplicate members, an etcd coord without endpoints, and restart commands that are not argv arrays', () => {
    assert.throws(
      () =>
        loadDbManagerConfig({
          base: {
            members: [
              { name: 'db1', host: 'a' },
              { name: 'db1', host: 'b' },
            ],
          },
        }),
      /appears twice/,
    );
    assert.throws(() => loadDbManagerConfig({ base: { ...base(), coord: { kind: 'etcd' } } }), /endpoints/);
    assert.throws(
      () =>
        loadConfig(DbManagerConfigSchema, {
          base: { members: [{ name: 'db1', host: 'a', restartCommand: 'systemctl start mariadb' }] },
        }),
      /restartCommand/,
    );
    assert.throws(
      () => loadDbManagerConfig({ base: { members: [{ name: 'db1', host: 'a', neverPromote: true }] } }),
      /neverPromote/,
    );
    assert.throws(
      () => loadDbManagerConfig({ base: { ...base(), guard: { member: 'db9' } } }),
      /guard.member db9 is not one of the members/,
    );
  });

  it('reads passwords and the admin token from the environment registry', () => {
    const config = loadDbManagerConfig({
      base: base(),
      env: { INSITU_DBMANAGER_PASSWORD: 'pw', INSITU_DBMANAGER_TOKEN: 'a-token-of-16-chars!' },
    });
    assert.equal(config.credentials.password, 'pw');
    assert.equal(config.admin.token, 'a-token-of-16-chars!');
  });
});

describe('README', () => {
  it("the members' my.cnf block holds what the tests start every member with (read-only after any restart)", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const ini = /```ini\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const options = new Map(
      ini
        .split('\n')
        .map((line) => line.split('=').map((part) => part.trim()))
        .filter((kv) => kv.length === 2)
        .map(([k, v]) => [k, v]),
    );
    for (const [key, value] of Object.entries(MEMBER_CONFIG))
      assert.equal(options.get(key), value, `${key} in the README's my.cnf`);
    assert.equal(options.get('gtid_strict_mode'), 'ON');
  });

  it('the manager account statements the tests run are the README lines, RELOAD included', () => {
    const statements = readmeManagerGrants('pw');
    assert.equal(statements.length, 2);
    assert.match(statements[1] ?? '', /\bRELOAD\b/);
    assert.doesNotMatch(readmeManagerGrants('pw', ['RELOAD'])[1] ?? '', /RELOAD/);
  });
});
