import { spawn, type ChildProcess } from 'node:child_process';
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
