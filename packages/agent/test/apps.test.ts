import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PassThrough } from 'node:stream';
import { AGENT_LOGS_PATH, InsituError, createLogger, waitFor, type Logger } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, bundleDigest, parseAgentConfig } from '../src/index.js';
import { answerLogs } from '../src/platform/logs-answer.js';
import { salesRows, writeCsv } from './fixtures.js';

const logger = createLogger({ name: 'test', level: 'silent' });

const PYTHON_APP = `
import insitu

def totals(request):
    rows = insitu.read_dataset("sales", group_by=["store"], aggregates=[{"fn": "count", "as": "n"}], order_by="store")
    return {"stores": [[r["store"], r["n"]] for r in rows]}

def undeclared(request):
    try:
        list(insitu.read_dataset("other"))
    except insitu.DataApiError as e:
        return {"code": e.code}

def cities(request):
    city = request.query.get("city", [""])[0]
    return [r["id"] for r in insitu.read_dataset("sales", columns=["id"], where=[("city", "=", city)], order_by="id")]

insitu.serve({"GET /totals": totals, "GET /undeclared": undeclared, "GET /cities": cities})
`;

function bundle(root: string, manifest: Record<string, unknown>, files: Record<string, string>): string {
  mkdirSync(root, { recursive: true });
  writeFileSync(
    join(root, 'insitu.json'),
    JSON.stringify({
      version: '1.0.0',
      endpoints: [{ method: 'GET', path: '/' }],
      datasets: [{ provider: 'acme', dataset: 'sales' }],
      ...manifest,
    }),
  );
  for (const [path, text] of Object.entries(files)) writeFileSync(join(root, path), text);
  return root;
}

/** This agent's provider, and the resolved dataset list the platform would send with each deployment. */
const ACME = 'prv_00000000000000000000000000';
const SALES = [{ providerId: ACME, dataset: 'sales' }];

describe('application runtimes and lifecycle', () => {
  let dir = '';
  let front: Server;
  let base = '';
  const agents: Agent[] = [];
  let current: Agent | undefined;
  const rows = salesRows(30);

  async function newAgent(
    options: { noSandbox?: boolean; allowNoSandbox?: boolean; retryFailedAfterMs?: number; log?: Logger } = {},
  ): Promise<Agent> {
    const config = parseAgentConfig(
      {
        sources: [
          {
            name: 'files',
            kind: 'csv',
            files: '*.csv',
            datasets: { sales: { columns: { amount: { type: 'decimal' } } } },
          },
        ],
        sandbox: { allowNoSandbox: options.allowNoSandbox ?? false },
      },
      { what: 't', baseDir: dir },
    );
    const agent = await Agent.create({
      config,
      dataDir: join(dir, `agent${agents.length}`),
      logger: options.log ?? logger,
      provider: { id: ACME, name: 'acme' },
      noSandbox: options.noSandbox ?? false,
      ...(options.retryFailedAfterMs !== undefined ? { retryFailedAfterMs: options.retryFailedAfterMs } : {}),
      restartPolicy: { initialBackoffMs: 50, maxBackoffMs: 200, crashLoopThreshold: 3, healthIntervalMs: 500 },
    });
    await agent.registry.refresh();
    agents.push(agent);
    current = agent;
    return agent;
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-apps-');
    writeCsv(join(dir, 'sales.csv'), rows);
    writeCsv(join(dir, 'other.csv'), rows.slice(0, 2));
    front = createServer((req, res) => current?.handle(req, res, { app: 'py' }));
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
  });

  after(async () => {
    for (const agent of agents) await agent.close();
    front?.close();
    await removeDir(dir);
  });

  it('runs a Python application with the stdlib SDK in the sandbox', async () => {
    const agent = await newAgent();
    const root = bundle(join(dir, 'py'), { name: 'py', runtime: 'python', entry: 'app.py' }, { 'app.py': PYTHON_APP });
    await agent.applyDesired([
      {
        id: 'py1',
        app: 'py',
        version: '1.0.0',
        digest: await bundleDigest(root),
        replicas: 1,
        bundle: root,
        datasets: SALES,
      },
    ]);
    await waitFor(() => agent.status().deployments[0]?.state === 'running', {
      timeoutMs: 60_000,
      what: 'the python app to run',
    });
    const totals = (await (await fetch(`${base}/totals`)).json()) as { stores: Array<[string, number]> };
    const expected = ['east', 'north', 'south', 'west'].map((s) => [s, rows.filter((r) => r.store === s).length]);
    assert.deepEqual(totals.stores, expected);
    assert.deepEqual(await (await fetch(`${base}/undeclared`)).json(), { code: 'INSITU_DATASET_NOT_DECLARED' });
    const berlin = await (await fetch(`${base}/cities?city=Berlin`)).json();
    assert.deepEqual(
      berlin,
      rows.filter((r) => r.city === 'Berlin').map((r) => r.id),
    );
  });

  it('reports a crash loop with the reason and the last output', async () => {
    const agent = await newAgent();
    const root = bundle(
      join(dir, 'crash'),
      { name: 'crash', runtime: 'node', entry: 'main.js' },
      { 'main.js': "console.error('missing configuration: FOO'); process.exit(3);\n" },
    );
    await agent.applyDesired([
      {
        id: 'c1',
        app: 'crash',
        version: '1.0.0',
        digest: await bundleDigest(root),
        replicas: 1,
        bundle: root,
        datasets: SALES,
      },
    ]);
    await waitFor(() => agent.status().deployments[0]?.state === 'crash-looping', {
      timeoutMs: 60_000,
      what: 'a crash loop to be reported',
    });
    const status = agent.status().deployments[0];
    // The reason names the exit and the last lines (issue 14).
    assert.match(String(status?.reason?.message), /exited with code 3; last output: missing configuration: FOO/);
    assert.ok(status?.instances[0]?.lastExit?.output.some((l) => l.includes('missing configuration: FOO')));

    // What `insitu app logs` reads through the tunnel: the last lines, then (follow) new ones.
    const answer = (follow: boolean) => {
      const seen = { status: 0, text: '', ended: false, closers: [] as Array<() => void> };
      answerLogs(agent, `${AGENT_LOGS_PATH}/c1?lines=2${follow ? '&follow=1' : ''}`, {
        respond: (code) => (seen.status = code),
        write: (text) => (seen.text += text),
        end: (text) => {
          seen.text += text ?? '';
          seen.ended = true;
        },
        onClose: (fn) => seen.closers.push(fn),
      });
      return seen;
    };
    const last = answer(false);
    assert.equal(last.status, 200);
    assert.ok(last.ended);
    const parsed = last.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { instance: string; stream: string; line: string });
    assert.equal(parsed.length, 2);
    assert.deepEqual(parsed.at(-1), {
      ...parsed.at(-1),
      instance: 'i0',
      stream: 'stderr',
      line: 'missing configuration: FOO',
    });
    const followed = answer(true);
    const before = followed.text.length;
    await waitFor(() => followed.text.length > before, {
      timeoutMs: 30_000,
      what: 'a new line of the restarted instance to be streamed',
    });
    assert.ok(!followed.ended);
    for (const close of followed.closers) close();
    let unknownStatus = 0;
    answerLogs(agent, `${AGENT_LOGS_PATH}/nope?lines=5`, {
      respond: (code) => (unknownStatus = code),
      write: () => undefined,
      end: () => undefined,
      onClose: () => undefined,
    });
    assert.equal(unknownStatus, 404, 'a deployment that does not run here');
    await agent.applyDesired([]);
    assert.deepEqual(agent.status().deployments, []);
  });

  it('refuses to start when bubblewrap cannot run, naming the package', async () => {
    const config = parseAgentConfig({ sandbox: { bwrap: join(dir, 'no-such-bwrap') } }, { what: 't', baseDir: dir });
    await assert.rejects(
      Agent.create({ config, dataDir: join(dir, 'agent-nobwrap'), logger, provider: '*' }),
      (e: unknown) =>
        e instanceof InsituError && e.code === 'INSITU_SANDBOX_UNAVAILABLE' && /bubblewrap/.test(e.message),
    );
  });

  it('refuses --no-sandbox unless the config allows it, and warns when it does', async () => {
    await assert.rejects(
      newAgent({ noSandbox: true }),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_SANDBOX_UNAVAILABLE',
    );
    let logged = '';
    const destination = new PassThrough();
    destination.on('data', (chunk: Buffer) => (logged += chunk.toString()));
    const agent = await newAgent({
      noSandbox: true,
      allowNoSandbox: true,
      log: createLogger({ name: 'test', level: 'warn', destination }),
    });
    await waitFor(() => logged.includes('WITHOUT A SANDBOX'), { timeoutMs: 5000, what: 'the warning' });
    assert.equal(agent.status().sandbox, 'none');
    const root = join(dir, 'py');
    await agent.applyDesired([
      {
        id: 'py2',
        app: 'py',
        version: '1.0.0',
        digest: await bundleDigest(root),
        replicas: 1,
        bundle: root,
        datasets: SALES,
      },
    ]);
    await waitFor(() => agent.status().deployments[0]?.state === 'running', {
      timeoutMs: 60_000,
      what: 'the unsandboxed app to run',
    });
    assert.equal((await fetch(`${base}/totals`)).status, 200);
  });

  it('resolves a work connection only to a ready instance of an active deployment, and signals when it exits', async () => {
    const agent = await newAgent();
    assert.equal(agent.workTarget('py3'), undefined, 'nothing before it is deployed');
    const root = join(dir, 'py');
    await agent.applyDesired([
      {
        id: 'py3',
        app: 'py',
        version: '1.0.0',
        digest: await bundleDigest(root),
        replicas: 2,
        bundle: root,
        datasets: SALES,
      },
    ]);
    await waitFor(() => agent.status().deployments[0]?.readyReplicas === 2, {
      timeoutMs: 60_000,
      what: 'two ready instances',
    });
    assert.equal(agent.workTarget('py'), undefined, 'an app name is not a deployment');
    assert.equal(agent.workTarget('../py3'), undefined);
    const first = agent.workTarget('py3');
    const second = agent.workTarget('py3');
    assert.ok(first && second);
    assert.notEqual(first.socketPath, second.socketPath, 'connections are spread over the instances');
    const answered = await new Promise<number>((resolve, reject) =>
      request({ socketPath: first.socketPath, path: '/totals' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    assert.equal(answered, 200, "the target is the instance's own socket");
    first.release();
    const third = agent.workTarget('py3');
    assert.equal(third?.socketPath, first.socketPath, 'the instance with the fewest connections');
    assert.equal(second.signal.aborted, false);
    await agent.applyDesired([]);
    assert.equal(agent.workTarget('py3'), undefined, 'nothing once it is undeployed');
    assert.ok(second.signal.aborted && third?.signal.aborted, 'connections to exited instances are told to close');
  });

  it('answers 503 for an application that is not deployed here', async () => {
    const agent = await newAgent();
    const answer = await fetch(`${base}/totals`);
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'INSITU_APP_UNAVAILABLE');
    assert.equal(agent.status().deployments.length, 0);
  });

  it('reports a bundle it cannot fetch as failed, and tries again on the next desired state', async () => {
    const agent = await newAgent({ retryFailedAfterMs: 0 });
    const source = join(dir, 'py');
    const later = join(dir, 'arrives-later');
    const desired = [
      {
        id: 'py3',
        app: 'py',
        version: '1.0.0',
        digest: await bundleDigest(source),
        replicas: 1,
        bundle: later,
        datasets: SALES,
      },
    ];
    await agent.applyDesired(desired);
    const failed = await agent.settled('py3');
    assert.deepEqual([failed?.state, failed?.reason?.code], ['failed', 'INSITU_BUNDLE_INVALID']);
    bundle(later, { name: 'py', runtime: 'python', entry: 'app.py' }, { 'app.py': PYTHON_APP });
    await agent.applyDesired(desired);
    await waitFor(() => agent.status().deployments[0]?.state === 'running', {
      timeoutMs: 60_000,
      what: 'the retried deployment to run',
    });
  });
});
