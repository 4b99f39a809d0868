import { appendFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify, parse } from 'yaml';
import Database from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import {
  startEtcdCluster,
  startMariaDbCluster,
  startPostgres,
  startSmtpSink,
  startWebhookReceiver,
  type EtcdCluster,
  type SmtpSink,
  type WebhookReceiver,
  type MariaDbCluster,
  type MariaDbInstance,
  type PostgresInstance,
} from '@insitu/test-helpers';
import { INSITU, cleanEnv, ok, runInsitu } from '../test/support.js';
import { HOST_ADDRESS, MACHINES, MGMT, netnsOf, type Machine, type Mgmt } from './network.js';
import { NsProcess } from './ns-process.js';

export const SERVER_PORT = 7070;
export const FRONT_PORT = 8080;
export const DBM_PORT = 7079;
const SECRET = 'testbed-cluster-secret-0123456789abcdef0123456789';
export const DBM_TOKEN = 'testbed-dbmanager-token-0123456789abcdef';
const PASSWORD = 'a-long-enough-password';
const APP_PASSWORD = 'testbed-app-password-0123456789';
const MANAGER_PASSWORD = 'testbed-manager-password-0123456789';

export const serverUrl = (m: Mgmt): string => `http://${MACHINES[m]}:${SERVER_PORT}`;
export const frontUrl = `http://${MACHINES.client}:${FRONT_PORT}`;

export interface AgentHandle {
  name: string;
  provider: string;
  machine: Machine;
  proc: NsProcess;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Everything running in the bed, with what the workload and the faults need. */
export interface Bed {
  dir: string;
  etcd: EtcdCluster;
  db: MariaDbCluster;
  pg: PostgresInstance;
  nodes: Map<Mgmt, NsProcess>;
  nodeConfigs: Map<Mgmt, string>;
  haproxy: NsProcess;
  agents: AgentHandle[];
  adminToken: string;
  devToken: string;
  devOrgId: string;
  key: string;
  service: string;
  callPath: string;
  /** The application "wards" (for further services on it). */
  appId: string;
  /** Where the operators and dbmanagers send alerts: a webhook receiver and an SMTP server on the bridge. */
  hook: WebhookReceiver;
  smtp: SmtpSink;
  /** Member name (db1..3) → instance. */
  members: Map<string, MariaDbInstance>;
  spawn(name: string, machine: Machine, command: string, args: string[], env?: Record<string, string>): NsProcess;
}

export async function ready(base: string): Promise<boolean> {
  try {
    const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** The front's own answers, coded like the platform's, for calls no node answered. */
function frontError(status: number, reason: string, code: string, message: string): string {
  const body = `${JSON.stringify({ error: { code, message } })}\n`;
  return `HTTP/1.0 ${status} ${reason}\r\ncache-control: no-cache\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const FRONT_ERRORS: Record<number, string> = {
  502: frontError(502, 'Bad Gateway', 'INSITU_UNAVAILABLE', 'a platform node sent a broken answer (front proxy)'),
  503: frontError(503, 'Service Unavailable', 'INSITU_UNAVAILABLE', 'no platform node is ready (front proxy)'),
  504: frontError(
    504,
    'Gateway Timeout',
    'INSITU_GATEWAY_TIMEOUT',
    'the platform node did not answer in time (front proxy)',
  ),
};

function haproxyConfig(dir: string): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 30s',
    // A little over the platform's own call deadline (gateway.timeoutMs, 8 s here), which
    // answers a coded 504 itself: only a node that cannot answer at all (cut off with calls
    // in flight) reaches this, and the front then answers coded too (the errorfiles).
    '  timeout server 9s',
    '  retries 3',
    '  option redispatch 1',
    // Not response-timeout: a call that timed out may have run; sending it again is not ours to decide.
    '  retry-on conn-failure empty-response',
    ...[502, 503, 504].map((status) => `  errorfile ${status} ${join(dir, `front-${status}.http`)}`),
    'frontend calls',
    `  bind ${MACHINES.client}:${FRONT_PORT}`,
    '  default_backend servers',
    'backend servers',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    '  default-server inter 200ms fall 2 rise 2',
    ...MGMT.map((m, i) => `  server s${i + 1} ${MACHINES[m]}:${SERVER_PORT} check`),
    '',
  ].join('\n');
}

const log = (line: string) => process.stdout.write(`testbed: ${line}\n`);

/**
 * Bring the 3+2 bed up inside the namespaces (which must exist). Whatever it started is
 * recorded in `started` as it goes, so a failure half-way still tears everything down.
 */
export async function startBed(dir: string, started: { bed: Partial<Bed> }): Promise<Bed> {
  const bed = started.bed;
  bed.dir = dir;
  bed.nodes = new Map();
  bed.nodeConfigs = new Map();
  bed.agents = [];
  const spawn: Bed['spawn'] = (name, machine, command, args, env = {}) =>
    new NsProcess(name, machine, command, args, cleanEnv(env), join(dir, 'logs', `${name}.log`)).start();
  bed.spawn = spawn;
  await mkdir(join(dir, 'logs'), { recursive: true });

  log('etcd (3 members) and MariaDB (3 members, GTID, semi-sync) on mgmt1..3; PostgreSQL on prov1');
  const [etcd, db, pg] = await Promise.all([
    startEtcdCluster({
      memberOptions: (i) => ({ netns: netnsOf(MGMT[i] ?? 'mgmt1'), host: MACHINES[MGMT[i] ?? 'mgmt1'] }),
    }),
    startMariaDbCluster({
      database: 'insitu',
      memberOptions: (i) => ({
        netns: netnsOf(MGMT[i] ?? 'mgmt1'),
        bindAddress: MACHINES[MGMT[i] ?? 'mgmt1'],
        port: 3306,
        extraConfig: {
          read_only: 'ON',
          rpl_semi_sync_slave_enabled: 'ON',
          rpl_semi_sync_master_wait_point: 'AFTER_SYNC',
        },
      }),
    }),
    startPostgres({ netns: netnsOf('prov1'), host: MACHINES.prov1, database: 'hospital', user: 'hospital' }),
  ]);
  bed.etcd = etcd;
  bed.db = db;
  bed.pg = pg;
  bed.members = new Map(db.members.map((m, i) => [`db${i + 1}`, m]));
  // Accounts on every member, not binlogged (replication already runs). The platform's
  // account has no READ_ONLY ADMIN: read_only is its fence.
  await Promise.all(
    db.members.map((m) =>
      m.query(
        [
          'SET SESSION sql_log_bin = 0',
          `CREATE USER 'insitu'@'%' IDENTIFIED BY '${APP_PASSWORD}'`,
          "GRANT ALL ON insitu.* TO 'insitu'@'%'",
          `CREATE USER 'insitu_manager'@'%' IDENTIFIED BY '${MANAGER_PASSWORD}'`,
          "GRANT RELOAD, PROCESS, BINLOG MONITOR, CONNECTION ADMIN, READ_ONLY ADMIN, REPLICATION MASTER ADMIN, REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO 'insitu_manager'@'%'",
        ].join(';\n'),
      ),
    ),
  );
  // The agents on prov1 and prov2 reach it over the bridge (initdb trusts only loopback hosts).
  await appendFile(
    join(pg.dataDir, 'pg_hba.conf'),
    `host all all ${MACHINES.prov1.replace(/\.\d+$/, '.0')}/24 scram-sha-256\n`,
  );
  await pg.query('SELECT pg_reload_conf()');
  await pg.query(
    "CREATE TABLE patients (id int primary key, ward text, age int); INSERT INTO patients SELECT g, 'ward-' || (g % 5), 20 + g % 60 FROM generate_series(1, 500) g;",
  );

  // Alert sinks in the root namespace on the bridge's address, which every machine reaches.
  bed.hook = await startWebhookReceiver({ host: HOST_ADDRESS });
  bed.smtp = await startSmtpSink({ host: HOST_ADDRESS });
  const notify = {
    webhooks: [{ url: bed.hook.url }],
    email: { host: bed.smtp.host, port: bed.smtp.port, from: 'insitu@testbed.test', to: ['ops@testbed.test'] },
    groupWaitMs: 0,
  };

  const env = {
    INSITU_DATABASE_PASSWORD: APP_PASSWORD,
    INSITU_DBMANAGER_PASSWORD: MANAGER_PASSWORD,
    INSITU_DBMANAGER_REPLICATION_PASSWORD: db.replicationPassword,
    INSITU_DBMANAGER_TOKEN: DBM_TOKEN,
  };
  const etcdEndpoints = etcd.endpoints;

  // The platform database is initialised once (through db1, which the dbmanager will make
  // primary: it is the only member with data), then every server follows the published primary.
  log('insitu init on the platform database');
  const base = join(dir, 'platform');
  const primary = db.members[0];
  if (primary === undefined) throw new Error('no MariaDB member');
  await primary.query('SET GLOBAL read_only = 0');
  const init = await runInsitu(
    [
      'init',
      '--data-dir',
      base,
      '--port',
      String(SERVER_PORT),
      '--database-url',
      `mysql://insitu@${primary.host}:3306/insitu`,
      '--json',
    ],
    env,
  );
  if (init.code !== 0) throw new Error(`insitu init: ${init.stderr}`);
  await primary.query('SET GLOBAL read_only = 1');
  const { admin } = JSON.parse(init.stdout) as { admin: { email: string; password: string } };
  const config = parse(await readFile(join(base, 'config.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  config.database = { ...config.database, followPrimary: 'platform' };
  config.cluster = { ...config.cluster, coordination: 'etcd', etcdEndpoints, secret: SECRET };
  config.shutdown = { ...config.shutdown, drainDelayMs: 1000 };
  // The client gives a call 10 s: the platform's own deadline is shorter, so it answers a
  // coded 504 before the client gives up, and the front's 9 s covers only a node cut off.
  config.gateway = { ...config.gateway, timeoutMs: 8000 };
  // Agents dial over the private bridge in plain text (the bed has no DNS names to put in
  // a certificate); a real install uses the CA made by `insitu init`.
  config.tunnel = { ...config.tunnel, plainText: 'allow' };

  const dbmConfig = (m: Mgmt, i: number) => ({
    cluster: 'platform',
    members: MGMT.map((n, j) => ({ name: `db${j + 1}`, host: MACHINES[n], port: 3306 })),
    credentials: { user: 'insitu_manager' },
    replication: { user: db.replicationUser },
    probe: { intervalMs: 200, connectTimeoutMs: 500 },
    detection: { suspectIntervalMs: 100 },
    guard: { member: `db${i + 1}`, socket: db.members[i]?.socket },
    coord: { kind: 'etcd', endpoints: etcdEndpoints, leaseTtlMs: 2000 },
    admin: { host: '127.0.0.1', port: DBM_PORT },
    failover: { cooldownMs: 1000 },
    notify,
    _machine: m,
  });

  for (const [i, m] of MGMT.entries()) {
    const data = join(dir, `server-${m}`);
    await cp(base, data, { recursive: true });
    const own = { ...config, listen: { ...config.listen, host: MACHINES[m], port: SERVER_PORT } };
    await writeFile(join(data, 'config.yaml'), stringify(own));
    const { _machine: _unused, ...dbm } = dbmConfig(m, i);
    await writeFile(join(dir, `dbmanager-${m}.yaml`), stringify(dbm));
    const file = join(dir, `node-${m}.yaml`);
    await writeFile(
      file,
      stringify({
        node: m,
        dataDir: join(dir, `node-${m}`),
        coord: { endpoints: etcdEndpoints },
        services: {
          server: { command: [process.execPath, INSITU, 'server', '--data-dir', data], env, health: serverUrl(m) },
          dbmanager: {
            command: [process.execPath, INSITU, 'dbmanager', '--config', join(dir, `dbmanager-${m}.yaml`)],
            env,
            health: `http://127.0.0.1:${DBM_PORT}`,
          },
        },
        cluster: { secret: SECRET },
        notify,
        alerts: { groupWaitMs: 0, groupIntervalMs: 1000, agentOfflineMs: 3000 },
        timing: {
          nodeLeaseTtlMs: 6000,
          nodeRenewMs: 500,
          leaderLeaseTtlMs: 6000,
          leaderRetryMs: 300,
          tickMs: 200,
          deepProbeIntervalMs: 1000,
        },
        log: { level: 'info' },
      }),
    );
    bed.nodeConfigs.set(m, file);
  }
  await writeFile(
    join(dir, 'cluster.yaml'),
    stringify({
      services: {
        server: {
          placement: 'every-node',
          liveness: { path: '/healthz', periodMs: 1000, timeoutMs: 1000, failureThreshold: 5 },
          readiness: { path: '/readyz', periodMs: 500, timeoutMs: 500 },
          startupGraceMs: 60_000,
          stopGraceMs: 10_000,
        },
        dbmanager: {
          placement: 'every-node',
          liveness: { path: '/healthz', periodMs: 1000, timeoutMs: 1000, failureThreshold: 3 },
          startupGraceMs: 30_000,
        },
      },
    }),
  );
  log('insitu node on mgmt1..3 (server + dbmanager)');
  for (const m of MGMT) {
    const proc = spawn(`node-${m}`, m, process.execPath, [INSITU, 'node', '--config', bed.nodeConfigs.get(m) ?? '']);
    bed.nodes.set(m, proc);
  }
  for (const m of MGMT) await bed.nodes.get(m)?.waitForOutput(/joined/, 60_000);
  const applied = await runInsitu([
    'operator',
    'apply',
    '-f',
    join(dir, 'cluster.yaml'),
    '--config',
    bed.nodeConfigs.get('mgmt1') ?? '',
  ]);
  if (applied.code !== 0) throw new Error(`operator apply: ${applied.stderr}${applied.stdout}`);
  await waitFor(async () => (await Promise.all(MGMT.map((m) => ready(serverUrl(m))))).every(Boolean), {
    timeoutMs: 120_000,
    what: 'three servers ready',
  });

  log('HAProxy in client');
  for (const [status, answer] of Object.entries(FRONT_ERRORS))
    await writeFile(join(dir, `front-${status}.http`), answer);
  await writeFile(join(dir, 'haproxy.cfg'), haproxyConfig(dir));
  bed.haproxy = spawn('haproxy', 'client', 'haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')]);
  await waitFor(() => ready(frontUrl), { timeoutMs: 30_000, what: 'HAProxy to answer' });

  log('providers hospital (PostgreSQL, agents on prov1 and prov2) and clinic (SQLite, prov2)');
  const url = frontUrl;
  bed.adminToken = (await ok(url, 'POST', '/api/v1/sessions', undefined, admin, 201)).token as string;
  const orgs: Record<string, { id: string; token: string }> = {};
  for (const [name, email] of [
    ['hospital-org', 'ann@hospital.test'],
    ['clinic-org', 'cli@clinic.test'],
    ['devco', 'dev@devco.test'],
  ] as const) {
    const signup = await ok(
      url,
      'POST',
      '/api/v1/signup',
      undefined,
      { org: { name }, user: { email, name, password: PASSWORD } },
      201,
    );
    await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, bed.adminToken, undefined);
    orgs[name] = { id: signup.org.id, token: signup.session.token };
  }
  const hospital = orgs['hospital-org'] ?? { id: '', token: '' };
  const clinic = orgs['clinic-org'] ?? { id: '', token: '' };
  const dev = orgs.devco ?? { id: '', token: '' };
  bed.devToken = dev.token;
  bed.devOrgId = dev.id;
  const hospitalId = (
    await ok(url, 'POST', '/api/v1/providers', hospital.token, { orgId: hospital.id, name: 'hospital' }, 201)
  ).id as string;
  const clinicId = (await ok(url, 'POST', '/api/v1/providers', clinic.token, { orgId: clinic.id, name: 'clinic' }, 201))
    .id as string;

  await writeFile(
    join(dir, 'hospital-agent.yaml'),
    stringify({
      sync: { intervalSeconds: 600 },
      sources: [
        {
          name: 'records',
          kind: 'postgres',
          host: pg.host,
          port: pg.port,
          database: pg.database,
          user: pg.user,
          passwordEnv: 'HOSPITAL_PG_PASSWORD',
          datasets: { patients: { description: 'Patients' } },
        },
      ],
    }),
  );
  const clinicDb = join(dir, 'clinic.db');
  const sqlite = new Database(clinicDb);
  sqlite.exec(
    "CREATE TABLE visits (id INTEGER PRIMARY KEY, reason TEXT); INSERT INTO visits (reason) VALUES ('checkup'), ('flu'), ('checkup');",
  );
  sqlite.close();
  await writeFile(
    join(dir, 'clinic-agent.yaml'),
    stringify({
      sync: { intervalSeconds: 600 },
      sources: [{ name: 'visits', kind: 'sqlite', path: clinicDb, datasets: { visits: { description: 'Visits' } } }],
    }),
  );

  const startAgent = async (
    name: string,
    provider: string,
    providerId: string,
    token: string,
    machine: Machine,
    platforms: Mgmt[],
    agentConfig: string,
  ) => {
    const enrol = (await ok(url, 'POST', '/api/v1/tokens', token, { providerId }, 201)).token as string;
    const args = [
      INSITU,
      'agent',
      '--platform',
      platforms.map(serverUrl).join(','),
      '--config',
      agentConfig,
      '--data-dir',
      join(dir, `agent-${name}`),
      '--name',
      name,
      '--log-level',
      'info',
    ];
    const agentEnv = { HOSPITAL_PG_PASSWORD: pg.password };
    const proc = spawn(`agent-${name}`, machine, process.execPath, [...args, '--token', enrol], agentEnv);
    await proc.waitForOutput(/agent running/);
    bed.agents?.push({ name, provider, machine, proc, args, env: cleanEnv(agentEnv) });
  };
  await startAgent(
    'hospital-a',
    'hospital',
    hospitalId,
    hospital.token,
    'prov1',
    ['mgmt1', 'mgmt2'],
    join(dir, 'hospital-agent.yaml'),
  );
  await startAgent(
    'hospital-b',
    'hospital',
    hospitalId,
    hospital.token,
    'prov2',
    ['mgmt2', 'mgmt3'],
    join(dir, 'hospital-agent.yaml'),
  );
  await startAgent(
    'clinic-a',
    'clinic',
    clinicId,
    clinic.token,
    'prov2',
    ['mgmt3', 'mgmt1'],
    join(dir, 'clinic-agent.yaml'),
  );

  log('application "wards" (2 instances per agent), deployed at hospital and published');
  const app = join(dir, 'app');
  await mkdir(app, { recursive: true });
  await writeFile(
    join(app, 'insitu.json'),
    JSON.stringify({
      name: 'wards',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      replicas: 2,
      datasets: [{ provider: 'hospital', dataset: 'patients' }],
      endpoints: [{ method: 'GET', path: '/ping' }],
    }),
  );
  await writeFile(
    join(app, 'index.js'),
    "import { serve } from '@insitu/sdk';\nserve({ 'GET /ping': () => ({ ok: true }) });\n",
  );
  const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);
  const submitted = await cli(['app', 'submit', app, '--org', dev.id, '--json'], dev.token);
  if (submitted.code !== 0) throw new Error(`app submit: ${submitted.stderr}`);
  const version = JSON.parse(submitted.stdout) as { id: string; appId: string };
  const approved = await cli(['app', 'approve', version.id, '--reason', 'fine'], hospital.token);
  if (approved.code !== 0) throw new Error(`app approve: ${approved.stderr}`);
  const deployed = await cli(['app', 'deploy', version.id, '--provider', 'hospital', '--wait', '--json'], dev.token);
  if (deployed.code !== 0) throw new Error(`app deploy: ${deployed.stderr}${deployed.stdout}`);
  const published = await cli(
    ['service', 'publish', 'wards', '--app', version.appId, '--rate', '100000', '--burst', '100000'],
    dev.token,
  );
  if (published.code !== 0) throw new Error(`service publish: ${published.stderr}`);
  const created = await cli(
    ['key', 'create', '--org', dev.id, '--service', 'wards', '--name', 'testbed', '--json'],
    dev.token,
  );
  if (created.code !== 0) throw new Error(`key create: ${created.stderr}`);
  bed.key = (JSON.parse(created.stdout) as { key: string }).key;
  bed.service = 'wards';
  bed.appId = version.appId;
  bed.callPath = '/s/wards/ping';
  for (const m of MGMT) {
    await waitFor(
      async () => {
        const response = await fetch(`${serverUrl(m)}${bed.callPath}`, {
          headers: { authorization: `Bearer ${bed.key}` },
          signal: AbortSignal.timeout(5000),
        });
        await response.arrayBuffer();
        return response.ok;
      },
      { timeoutMs: 60_000, what: `a call through ${m}` },
    );
  }
  log('bed up');
  return bed as Bed;
}

/** Stop everything the bed started, in reverse order; never throws. */
export async function stopBed(started: { bed: Partial<Bed> }): Promise<void> {
  const bed = started.bed;
  const quietly = async (what: () => Promise<unknown> | undefined) => {
    try {
      await what();
    } catch (error) {
      process.stderr.write(`testbed: teardown: ${(error as Error).message}\n`);
    }
  };
  for (const agent of bed.agents ?? []) await quietly(() => agent.proc.stop(5000));
  await quietly(() => bed.haproxy?.stop(2000));
  await Promise.all([...(bed.nodes?.values() ?? [])].map((n) => quietly(() => n.stop(20_000))));
  await Promise.all([
    quietly(() => bed.db?.stop()),
    quietly(() => bed.etcd?.stop()),
    quietly(() => bed.pg?.stop()),
    quietly(() => bed.hook?.stop()),
    quietly(() => bed.smtp?.stop()),
  ]);
}
