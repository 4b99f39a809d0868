import { watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { once } from 'node:events';
import { InsituError, answerClientError, createLogger, waitFor, type LogLevel } from '@insitu/core';
import { Agent, bundleDigest, parseAgentConfig, readManifest, type DeploymentStatus } from '@insitu/agent';
import { line, untilAborted, type CliIo } from '../io.js';

export interface AppDevOptions {
  data: string[];
  host: string;
  port: number;
  sandbox?: boolean;
  logLevel?: LogLevel;
  /** Reload the application when a file of its folder changes. */
  watch?: boolean;
}

/**
 * `--data sales=./sample.csv`, `--data ./sample.csv` (dataset "sample"), `--data ./shop.db` or
 * `--data shop=./shop.db`: a SQLite file is the agent's SQLite source, every table (and view) a
 * dataset of its own name, exactly as for a file configured in agent.yaml; `NAME=` names that source.
 */
export function devSources(data: readonly string[], cwd: string): Array<Record<string, unknown>> {
  return data.map((spec, i) => {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : undefined;
    const raw = eq > 0 ? spec.slice(eq + 1) : spec;
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw);
    const ext = extname(path).toLowerCase();
    if (ext === '.csv') {
      const stem = basename(path, extname(path));
      return { name: `data${i}`, kind: 'csv', files: path, ...(name ? { datasets: { [stem]: { name } } } : {}) };
    }
    if (['.db', '.sqlite', '.sqlite3'].includes(ext)) return { name: name ?? `data${i}`, kind: 'sqlite', path };
    throw new InsituError('INSITU_USAGE', `--data ${spec}: give a .csv file or a SQLite file (.db, .sqlite)`);
  });
}

/**
 * Run an application from its directory, in the same sandbox the agent uses, against
 * local sample data, and serve it on localhost until interrupted.
 */
export async function runAppDev(dir: string, options: AppDevOptions, io: CliIo): Promise<void> {
  const bundle = isAbsolute(dir) ? dir : resolve(io.cwd, dir);
  const manifest = await readManifest(bundle);
  const config = parseAgentConfig(
    { sources: devSources(options.data, io.cwd), limits: { queryTimeoutMs: 60_000 } },
    { what: '--data', baseDir: io.cwd },
  );
  const logger = createLogger({ name: 'app-dev', level: options.logLevel ?? 'warn', destination: io.stderr });
  const workDir = await mkdtemp(join(tmpdir(), 'insitu-dev-'));
  const noSandbox = options.sandbox === false;
  if (noSandbox)
    line(
      io.stderr,
      'insitu: WARNING: --no-sandbox: the application runs with all your rights (files, network). Development only.',
    );
  const agent = await Agent.create({
    config,
    dataDir: workDir,
    logger,
    provider: '*',
    noSandbox,
    allowNoSandbox: true,
    env: io.env,
    restartPolicy: { initialBackoffMs: 500, maxBackoffMs: 5000, crashLoopThreshold: 3 },
  });
  const server = createServer((req, res) => agent.handle(req, res, { deployment: 'dev' }));
  let stopWatching: (() => void) | undefined;
  server.on('clientError', answerClientError);
  try {
    const refreshed = await agent.registry.refresh();
    for (const source of refreshed.sources)
      if (source.error) line(io.stderr, `insitu: ${source.error.message} [${source.error.code}]`);
    const available = new Set(refreshed.datasets.map((d) => d.name));
    line(io.stdout, `sample datasets: ${[...available].sort().join(', ') || 'none'}`);
    const missing = manifest.datasets.filter((d) => !available.has(d.dataset)).map((d) => d.dataset);
    if (missing.length > 0)
      line(
        io.stderr,
        `insitu: no sample data for ${missing.join(', ')} (pass --data ${missing[0]}=FILE.csv); reading it will fail`,
      );
    const digest = await bundleDigest(bundle);
    await agent.applyDesired([
      { id: 'dev', app: manifest.name, version: manifest.version, digest, replicas: 1, bundle },
    ]);
    let status: DeploymentStatus | undefined;
    await waitFor(
      () => {
        status = agent.status().deployments[0];
        return status !== undefined && ['running', 'failed', 'crash-looping'].includes(status.state);
      },
      { timeoutMs: 120_000, what: `${manifest.name} to start`, ...(io.signal ? { signal: io.signal } : {}) },
    );
    if (status?.state !== 'running') {
      const output = status?.instances.flatMap((i) => i.lastExit?.output ?? []) ?? [];
      throw new InsituError(
        'INSITU_APP_UNAVAILABLE',
        `${manifest.name} did not start: ${status?.reason?.message ?? status?.state ?? 'unknown'}${output.length > 0 ? `\n${output.join('\n')}` : ''}`,
      );
    }
    server.listen(options.port, options.host);
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    line(
      io.stdout,
      `${manifest.name}@${manifest.version} is running${noSandbox ? ' WITHOUT a sandbox' : ' in the sandbox'}: ${url}/`,
    );
    const example = manifest.endpoints?.find((e) => e.method === 'GET' && !e.path.includes('{'));
    if (example) line(io.stdout, `curl ${url}${example.path}`);
    if (options.watch) {
      line(io.stdout, `watching ${bundle}: a change reloads the application`);
      stopWatching = watchBundle(bundle, async () => {
        try {
          const next = await readManifest(bundle);
          const nextDigest = await bundleDigest(bundle);
          await agent.applyDesired([
            { id: 'dev', app: next.name, version: next.version, digest: nextDigest, replicas: 1, bundle },
          ]);
          line(io.stdout, `reloaded ${next.name}@${next.version} (sha256 ${nextDigest.slice(0, 12)}…)`);
        } catch (error) {
          // A half-saved or invalid manifest: say so and keep the running version.
          const failure =
            error instanceof InsituError ? error : new InsituError('INSITU_BUNDLE_INVALID', (error as Error).message);
          line(io.stderr, `insitu: not reloaded: ${failure.message} [${failure.code}]`);
        }
      });
    }
    await untilAborted(io.signal);
  } finally {
    stopWatching?.();
    server.close();
    await agent.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * Call `reload` once after a burst of changes in `dir` (editors write a file in several
 * steps): 300 ms after the last event, never two reloads at once.
 */
function watchBundle(dir: string, reload: () => Promise<void>): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = reload().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        run();
      }
    });
  };
  const watcher = watch(dir, { recursive: true }, (_event, file) => {
    if (file && /(^|\/)(node_modules|\.git)(\/|$)/.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(run, 300);
  });
  watcher.on('error', () => undefined);
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
