import { InsituError } from '@insitu/core';
import { dataDirOf, isInitialised, loadCliServerConfig, runningUrl, type DataDirOptions } from '../data-dir.js';
import { line, type CliIo } from '../io.js';

export interface StatusOptions extends DataDirOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

/** What `insitu status` found. */
export interface StatusReport {
  url: string;
  alive: boolean;
  ready: boolean;
  checks?: Record<string, string>;
  error?: string;
  cluster?: unknown;
}

async function getJson(url: string, token?: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/** The URL to ask: `--url`, else `INSITU_URL`, else the data dir's configured listen address. */
export function platformUrl(options: StatusOptions, io: CliIo): string {
  const explicit = options.url ?? io.env.INSITU_URL;
  if (explicit) return explicit.replace(/\/+$/, '');
  const dataDir = dataDirOf(options, io);
  if (!isInitialised(dataDir))
    throw new InsituError(
      'INSITU_NOT_INITIALISED',
      `no platform URL: pass --url, sign in once with insitu login --url URL, or run in an initialised data dir (${dataDir})`,
    );
  // The process serving this data dir knows its real address (the config may say port 0, or another port than --port gave).
  const running = runningUrl(dataDir);
  if (running) return running;
  const config = loadCliServerConfig(options, io, dataDir, {});
  if (config.publicUrl) return config.publicUrl;
  if (config.listen.port === 0)
    throw new InsituError(
      'INSITU_USAGE',
      `the platform of ${dataDir} is not running, and its config listens on any free port (0): pass --url`,
    );
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`;
}

/** Ask a platform node whether it is alive and ready, and with a token, for the cluster view. */
export async function platformStatus(options: StatusOptions, io: CliIo): Promise<StatusReport> {
  const url = platformUrl(options, io);
  const token = options.token ?? io.env.INSITU_TOKEN;
  try {
    const health = await getJson(`${url}/healthz`);
    const ready = await getJson(`${url}/readyz`);
    const report: StatusReport = { url, alive: health.status === 200, ready: ready.status === 200 };
    const checks = ready.body as
      { checks?: Record<string, string>; error?: { details?: { checks?: Record<string, string> } } } | undefined;
    const found = checks?.checks ?? checks?.error?.details?.checks;
    if (found) report.checks = found;
    if (token) {
      const cluster = await getJson(`${url}/api/v1/cluster`, token);
      report.cluster = cluster.status === 200 ? cluster.body : { error: cluster.body };
    }
    return report;
  } catch (error) {
    return { url, alive: false, ready: false, error: (error as Error).message };
  }
}

/** Print the status; the exit code is 1 when the node is not ready. */
export async function runStatus(options: StatusOptions, io: CliIo): Promise<number> {
  const report = await platformStatus(options, io);
  if (options.json) line(io.stdout, JSON.stringify(report));
  else {
    line(io.stdout, `${report.url}: ${report.ready ? 'ready' : report.alive ? 'alive, NOT ready' : 'unreachable'}`);
    for (const [name, state] of Object.entries(report.checks ?? {})) line(io.stdout, `  ${name}: ${state}`);
    if (report.error) line(io.stdout, `  error: ${report.error}`);
    if (report.cluster) line(io.stdout, `  cluster: ${JSON.stringify(report.cluster)}`);
  }
  return report.ready ? 0 : 1;
}
