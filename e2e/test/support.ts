import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@insitu/core';

/** The real `insitu` binary of this checkout. */
export const INSITU = fileURLToPath(new URL('../../../packages/cli/bin/insitu.js', import.meta.url));

/** Environment for child processes: none of the caller's INSITU_* settings leak in. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('INSITU_')) env[key] = value;
  return { ...env, ...extra };
}

/** Run `insitu ARGS` to completion. */
export function runInsitu(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INSITU, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A long-running `insitu` process (server, agent) whose output we watch. */
export class InsituProcess {
  readonly child: ChildProcess;
  output = '';
  private exited: Promise<number | null>;

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, [INSITU, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait until the output matches; fails early if the process ends. */
  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        if (!this.running) throw new Error(`${this.name} exited: ${this.output.slice(-2000)}`);
        return this.output.match(pattern) ?? undefined;
      },
      { timeoutMs, what: `${this.name} to print ${pattern}` },
    );
  }

  /** Stop with `signal` and wait for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

/** A tiny REST client for the tests (the CLI is used where a user would use it). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function rest<T = any>(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Like {@link rest}, failing unless the status is `expected`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function ok<T = any>(
  url: string,
  method: string,
  path: string,
  token: string | undefined,
  body: unknown,
  expected = 200,
): Promise<T> {
  const result = await rest<T>(url, method, path, token, body);
  if (result.status !== expected)
    throw new Error(
      `${method} ${path}: expected ${expected}, got ${result.status}: ${JSON.stringify(result.body).slice(0, 400)}`,
    );
  return result.body;
}

/** A signed-up, approved organisation: its id and its first user's session token. */
export interface TestOrg {
  orgId: string;
  token: string;
}

/**
 * The two parties of most scenarios, signed up and approved by the platform admin: `acme`
 * (the provider's organisation, with a provider named `providerName` and an enrolment token
 * for its agent) and `devco` (the developer's).
 */
export async function providerAndDeveloper(
  url: string,
  adminToken: string,
  options: { password: string; providerName?: string },
): Promise<{ acme: TestOrg & { providerId: string; agentToken: string }; dev: TestOrg }> {
  const orgs: Record<string, TestOrg> = {};
  for (const [name, email] of [
    ['acme', 'ann@acme.test'],
    ['devco', 'dev@devco.test'],
  ] as const) {
    const signup = await ok(
      url,
      'POST',
      '/api/v1/signup',
      undefined,
      { org: { name }, user: { email, name, password: options.password } },
      201,
    );
    await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, adminToken, undefined);
    orgs[name] = { orgId: signup.org.id, token: signup.session.token };
  }
  const acme = orgs.acme as TestOrg;
  const providerId = (
    await ok(
      url,
      'POST',
      '/api/v1/providers',
      acme.token,
      { orgId: acme.orgId, name: options.providerName ?? 'acme-data' },
      201,
    )
  ).id as string;
  const agentToken = (await ok(url, 'POST', '/api/v1/tokens', acme.token, { providerId }, 201)).token as string;
  return { acme: { ...acme, providerId, agentToken }, dev: orgs.devco as TestOrg };
}

/**
 * The two ways a call reaches an application, for scenarios that run under both: HTTP/2
 * streams only (0) and work connections (the agent's `tunnel.workConnections`).
 */
export const WORK_CONNECTION_MODES = [0, 16] as const;

/** The agent config line that sets its work connections. */
export function tunnelYaml(workConnections: number): string {
  return `tunnel: { workConnections: ${workConnections} }\n`;
}

/** The platform administrator's credentials, as `insitu init --json` prints them. */
export interface AdminCredentials {
  email: string;
  password: string;
}

/** `insitu init` into `dataDir` (port 0, `--json` added); `args` and `env` go along as given. */
export async function initPlatform(
  dataDir: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<AdminCredentials> {
  const init = await runInsitu(
    ['init', '--data-dir', dataDir, '--port', '0', ...(options.args ?? []), '--json'],
    options.env,
  );
  if (init.code !== 0) throw new Error(`insitu init exited ${init.code}: ${init.stderr}`);
  return (JSON.parse(init.stdout) as { admin: AdminCredentials }).admin;
}

/**
 * `insitu server` on `dataDir` (port 0), started and listening: the process and its URL.
 * A server that does not come up is stopped before the error is thrown.
 */
export async function startServer(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ server: InsituProcess; url: string }> {
  const server = new InsituProcess('server', ['server', '--data-dir', dataDir, '--port', '0'], env);
  try {
    const url = (await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/))[1] ?? '';
    return { server, url };
  } catch (error) {
    await server.stop('SIGKILL');
    throw error;
  }
}

/** A session token for `credentials` (`POST /api/v1/sessions`). */
export async function signInAs(url: string, credentials: AdminCredentials): Promise<string> {
  return (await ok(url, 'POST', '/api/v1/sessions', undefined, credentials, 201)).token as string;
}

/** A platform of one server on SQLite, initialised in `dir/platform`, with its administrator signed in. */
export interface StartedPlatform {
  server: InsituProcess;
  url: string;
  admin: AdminCredentials;
  adminToken: string;
}

/**
 * The all-in-one bring-up of most scenarios: `insitu init` into `dir/platform`, `insitu
 * server` on it, and the administrator signed in. (Not the in-process platform of
 * `agent-platform.ts`: this one runs the real binary.)
 */
export async function startPlatform(dir: string): Promise<StartedPlatform> {
  const dataDir = join(dir, 'platform');
  const admin = await initPlatform(dataDir);
  const { server, url } = await startServer(dataDir);
  try {
    return { server, url, admin, adminToken: await signInAs(url, admin) };
  } catch (error) {
    await server.stop('SIGKILL');
    throw error;
  }
}

/**
 * `insitu agent` named `name` (its data directory `dataDir`, by default `dir/NAME`), with
 * the config `dir/agent.yaml` unless told, dialling `platform` (one URL or several, comma
 * separated), logging at info; running once it prints `agent running`. `token` is the
 * enrolment token (omitted, the agent uses the credential in its data directory). An
 * agent that does not come up is stopped before the error is thrown.
 */
export async function startAgent(
  dir: string,
  platform: string,
  token: string | undefined,
  options: { name: string; config?: string; dataDir?: string },
): Promise<InsituProcess> {
  const agent = new InsituProcess(options.name, [
    'agent',
    '--platform',
    platform,
    '--config',
    options.config ?? join(dir, 'agent.yaml'),
    '--data-dir',
    options.dataDir ?? join(dir, options.name),
    '--name',
    options.name,
    '--log-level',
    'info',
    ...(token ? ['--token', token] : []),
  ]);
  try {
    await agent.waitForOutput(/agent running/);
    return agent;
  } catch (error) {
    await agent.stop('SIGKILL');
    throw error;
  }
}

/** One more enrolment token for the provider `org.providerId`, created by a member of its organisation. */
export async function enrolmentToken(url: string, org: { token: string; providerId: string }): Promise<string> {
  return (await ok(url, 'POST', '/api/v1/tokens', org.token, { providerId: org.providerId }, 201)).token as string;
}

/** Write an application bundle: `insitu.json` from `manifest`, and each of `files` (name to content). */
export async function writeBundle(dir: string, manifest: object, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'insitu.json'), JSON.stringify(manifest));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}

/** What {@link publishApp} made: the version, its deployment, the service and an API key for it. */
export interface PublishedApp {
  versionId: string;
  appId: string;
  deploymentId: string;
  serviceId: string;
  key: string;
}

/**
 * The way from bundle to callable service, through the CLI as users go it: the developer
 * submits `bundle`, the provider approves it (with `reason` if given), the developer deploys
 * it at `provider` (`--wait`, `replicas` if given), publishes it as `service` (with `rate`
 * and `burst` if given) and creates a key named `e2e` for it. Any step that fails throws
 * with its output.
 */
export async function publishApp(
  url: string,
  options: {
    bundle: string;
    service: string;
    developer: TestOrg;
    approver: TestOrg;
    provider?: string;
    reason?: string;
    replicas?: number;
    rate?: { rate: number; burst: number };
  },
): Promise<PublishedApp> {
  const { developer, approver } = options;
  const cli = async (args: string[], token: string): Promise<string> => {
    const result = await runInsitu([...args, '--url', url, '--token', token]);
    if (result.code !== 0) throw new Error(`insitu ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  };
  const version = JSON.parse(
    await cli(['app', 'submit', options.bundle, '--org', developer.orgId, '--json'], developer.token),
  ) as { id: string; appId: string };
  await cli(
    ['app', 'approve', version.id, ...(options.reason !== undefined ? ['--reason', options.reason] : [])],
    approver.token,
  );
  const deployment = JSON.parse(
    await cli(
      [
        'app',
        'deploy',
        version.id,
        '--provider',
        options.provider ?? 'acme-data',
        ...(options.replicas !== undefined ? ['--replicas', String(options.replicas)] : []),
        '--wait',
        '--json',
      ],
      developer.token,
    ),
  ) as { id: string };
  const service = JSON.parse(
    await cli(
      [
        'service',
        'publish',
        options.service,
        '--app',
        version.appId,
        ...(options.rate ? ['--rate', String(options.rate.rate), '--burst', String(options.rate.burst)] : []),
        '--json',
      ],
      developer.token,
    ),
  ) as { id: string };
  const created = JSON.parse(
    await cli(
      ['key', 'create', '--org', developer.orgId, '--service', options.service, '--name', 'e2e', '--json'],
      developer.token,
    ),
  ) as { key: string };
  return {
    versionId: version.id,
    appId: version.appId,
    deploymentId: deployment.id,
    serviceId: service.id,
    key: created.key,
  };
}
