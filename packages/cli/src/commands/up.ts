import { createServer } from 'node:net';
import { InsituError, type LogLevel } from '@insitu/core';
import { VERSION, issueSession, startServer, type RunningServer } from '@insitu/server';
import {
  dataDirOf,
  fileLogger,
  isInitialised,
  loadCliServerConfig,
  writeRunFile,
  type DataDirOptions,
} from '../data-dir.js';
import { seedDemo, type DemoSeed } from '../demo/seed-demo.js';
import { line, untilAborted, type CliIo } from '../io.js';
import { initDataDir } from './init.js';

export interface UpOptions extends DataDirOptions {
  host?: string;
  port?: number;
  adminEmail: string;
  logLevel?: LogLevel;
  json?: boolean;
}

/** What `insitu up` prints, also as `--json`. */
export interface UpReport {
  url: string;
  dataDir: string;
  admin: { email: string; password?: string };
  token: string;
  tokenExpiresAt: string;
  datasets: string[];
  sandbox: 'bubblewrap' | 'none';
  service: { name: string; running: boolean; reason?: string; url: string };
  key: string;
  commands: string[];
}

function listenFlags(options: UpOptions): Record<string, unknown> {
  if (options.host === undefined && options.port === undefined) return {};
  return {
    listen: {
      ...(options.host ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
    },
  };
}

/** Fail with a coded error, before anything is created, when `host:port` cannot be listened on. */
export async function requireFreePort(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new InsituError(
              'INSITU_USAGE',
              `port ${port} on ${host} is in use: stop what listens there, or choose another with --port (0: any free one)`,
            )
          : new InsituError('INSITU_USAGE', `cannot listen on ${host}:${port}: ${error.message}`, { cause: error }),
      ),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * Start the all-in-one platform on its embedded defaults, with the demo provider's
 * agent, the demo application deployed and published, and a key to call it. Returns the
 * report and what to close.
 */
export async function bringUp(
  options: UpOptions,
  io: CliIo,
  progress: (step: string) => void,
): Promise<{ report: UpReport; close: () => Promise<void> }> {
  const dataDir = dataDirOf(options, io);
  let password: string | undefined;
  // The port first: a busy port found after initialising would leave a data dir whose one-time password nobody saw.
  const listen = isInitialised(dataDir)
    ? loadCliServerConfig(options, io, dataDir, listenFlags(options)).listen
    : { host: options.host ?? '127.0.0.1', port: options.port ?? 7070 };
  await requireFreePort(listen.host, listen.port);
  if (!isInitialised(dataDir)) {
    progress(`initialising ${dataDir}`);
    const init = await initDataDir({ ...options, json: false }, io);
    password = init.admin.password;
  }
  const flags = listenFlags(options);
  if (options.logLevel) flags.log = { level: options.logLevel };
  const config = loadCliServerConfig(options, io, dataDir, flags);
  progress('starting the platform');
  const logger = fileLogger(dataDir, config.log.level, 'up');
  const server: RunningServer = await startServer({ config, dataDir, logger });
  let demo: DemoSeed | undefined;
  let removeRunFile = async () => undefined as void;
  try {
    removeRunFile = await writeRunFile(dataDir, server.url);
    const platform = await server.store.orgs.platform();
    const [admin] = platform
      ? (await server.store.users.members(platform.id, { limit: 10, offset: 0 })).filter((m) =>
          m.roles.includes('admin'),
        )
      : [];
    if (!admin)
      throw new InsituError('INSITU_NOT_INITIALISED', `the data dir ${dataDir} has no platform administrator`);
    const session = await issueSession(server.store, admin.user, config.auth.sessionTtlSeconds * 1000);
    demo = await seedDemo({
      url: server.url,
      adminToken: session.token,
      store: server.store,
      dataDir,
      logger: logger.child({ subsystem: 'demo-agent' }),
      version: VERSION,
      progress,
    });
    const auth = `-H ${shellQuote(`authorization: Bearer ${session.token}`)}`;
    const keyAuth = `-H ${shellQuote(`authorization: Bearer ${demo.key}`)}`;
    const serviceUrl = `${server.url}/s/${demo.service.name}`;
    const report: UpReport = {
      url: server.url,
      dataDir,
      admin: { email: admin.user.email, ...(password ? { password } : {}) },
      token: session.token,
      tokenExpiresAt: new Date(session.expiresAt).toISOString(),
      datasets: demo.datasets,
      sandbox: demo.sandbox,
      service: { ...demo.service, url: serviceUrl },
      key: demo.key,
      commands: [
        `curl -s ${keyAuth} ${shellQuote(`${serviceUrl}/cities`)}`,
        `curl -s ${keyAuth} ${shellQuote(`${serviceUrl}/top-products?limit=5`)}`,
        `curl -s ${auth} ${shellQuote(`${server.url}/api/v1/datasets?q=sales`)}`,
        `curl -s ${auth} ${shellQuote(`${server.url}/api/v1/audit?service=${demo.service.name}`)}`,
      ],
    };
    const agent = demo.agent;
    return {
      report,
      close: async () => {
        await agent.close();
        await removeRunFile();
        await server.close();
      },
    };
  } catch (error) {
    await demo?.agent.close();
    await removeRunFile();
    await server.close();
    throw error;
  }
}

export async function runUp(options: UpOptions, io: CliIo): Promise<void> {
  const progress = options.json ? () => undefined : (step: string) => line(io.stderr, `… ${step}`);
  const { report, close } = await bringUp(options, io, progress);
  try {
    if (options.json) {
      line(io.stdout, JSON.stringify(report));
    } else {
      line(io.stdout, `Insitu is up at ${report.url}`);
      line(io.stdout, `  console:  ${report.url}/console/  (sign in as the admin below)`);
      line(io.stdout, `  data dir: ${report.dataDir} (logs in insitu.log)`);
      line(
        io.stdout,
        `  admin:    ${report.admin.email}${report.admin.password ? `  password: ${report.admin.password}  (shown once; only its hash is stored)` : `  (password shown on the first run; to set a new one: insitu admin reset-password --data-dir ${report.dataDir})`}`,
      );
      line(io.stdout, `  token:    ${report.token}  (admin session, valid until ${report.tokenExpiresAt})`);
      line(
        io.stdout,
        `  catalog:  demo provider "demo-retail" with ${report.datasets.join(', ')} (metadata only; the rows stay in demo/retail.db)`,
      );
      line(
        io.stdout,
        `  service:  ${report.service.url}/… ${report.service.running ? `running next to the data (${report.sandbox === 'bubblewrap' ? 'sandboxed by bubblewrap' : 'NOT sandboxed: bubblewrap is missing'})` : `NOT running: ${report.service.reason ?? 'unknown'}`}`,
      );
      line(io.stdout, `  API key:  ${report.key}  (for the service; shown once)`);
      line(io.stdout, 'Try:');
      for (const command of report.commands) line(io.stdout, command);
      line(io.stdout, 'Press Ctrl-C to stop.');
    }
    await untilAborted(io.signal);
    if (!options.json) line(io.stderr, '… stopping');
  } finally {
    await close();
  }
}
