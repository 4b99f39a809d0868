import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@insitu/core';
import { createMemoryCoordinator, type MemoryCoordinator } from '@insitu/coord';
import type { AlertMessage } from '@insitu/notify';
import {
  freePort,
  makeTempDir,
  removeDir,
  startSmtpSink,
  startWebhookReceiver,
  type SmtpSink,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import { OperatorNode, listEvents, loadNodeConfig, requestRestart } from '../src/index.js';
import { applyYaml, fakeService, quietLogger, serviceOn, waitForState } from './support.js';

const SPEC = (extra = '') => `
deepProbes: { enabled: false }
services:
  api:
    placement: every-node
    liveness: { path: /healthz, periodMs: 200, timeoutMs: 150, failureThreshold: 3 }
    readiness: { path: /readyz, periodMs: 200, timeoutMs: 150 }
    startupGraceMs: 5000
    stopGraceMs: 1500
    restart: { backoffInitialMs: 100, backoffMaxMs: 400, budget: 5, windowMs: 60000 }
  crashy:
    placement: every-node
    liveness: { path: /healthz, periodMs: 200, timeoutMs: 150 }
    startupGraceMs: 5000
    restart: { backoffInitialMs: 50, backoffMaxMs: 200, budget: 3, windowMs: 60000 }
${extra}`;

describe('operator on one node: supervision, recovery ladder, budget and alerts', () => {
  let dir: string;
  let coordinator: MemoryCoordinator;
  let node: OperatorNode;
  let hook: WebhookReceiver;
  let smtp: SmtpSink;
  let crashFile: string;
  let hangFile: string;
  let apiPort: number;

  before(async () => {
    dir = await makeTempDir('insitu-operator-');
    hook = await startWebhookReceiver();
    smtp = await startSmtpSink();
    coordinator = createMemoryCoordinator();
    crashFile = join(dir, 'crash');
    hangFile = join(dir, 'hang');
    await writeFile(crashFile, 'crash');
    apiPort = await freePort();
    const config = loadNodeConfig({
      base: {
        node: 'node1',
        dataDir: dir,
        coord: { endpoints: ['http://unused.invalid:2379'] },
        services: {
          api: fakeService(apiPort, { FAKE_HANG_FILE: hangFile, FAKE_DRAIN_MS: '100' }),
          crashy: fakeService(await freePort(), { FAKE_CRASH_FILE: crashFile }),
        },
        notify: {
          webhooks: [{ url: hook.url }],
          email: { host: smtp.host, port: smtp.port, from: 'insitu@example.org', to: ['ops@example.org'] },
          retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 },
        },
        alerts: { groupWaitMs: 300, groupIntervalMs: 1000 },
        timing: { nodeLeaseTtlMs: 2000, nodeRenewMs: 300, leaderLeaseTtlMs: 3000, leaderRetryMs: 200, tickMs: 200 },
      },
    });
    node = new OperatorNode({ config, coordinator, logger: quietLogger() });
    await node.start();
    await applyYaml(coordinator, dir, SPEC());
  });

  after(async () => {
    await node?.close();
    await coordinator?.close();
    await hook?.stop();
    await smtp?.stop();
    await removeDir(dir);
  });

  it('kill -9 of a service: restarted at once and ready again', async () => {
    const before = await waitForState(coordinator, 'node1', 'api', 'ready');
    assert.ok(before.pid);
    process.kill(before.pid, 'SIGKILL');
    const after = await waitForState(coordinator, 'node1', 'api', 'ready', { notPid: before.pid });
    assert.equal(after.restarts, before.restarts + 1);
    assert.equal(after.lastExit?.signal, 'SIGKILL');
    assert.match(after.lastExit?.reason ?? '', /killed by SIGKILL/);
    const response = await fetch(`http://127.0.0.1:${apiPort}/`);
    assert.equal(((await response.json()) as { pid: number }).pid, after.pid, 'the new process answers');
    const events = await listEvents(coordinator, { service: 'api' });
    assert.ok(
      events.some((e) => e.type === 'exit' && /SIGKILL; restart at once/.test(e.reason)),
      'the exit and the immediate restart are events with their reason',
    );
  });

  it('a service that always crashes: back-off, budget used up → failed, exactly one alert; one resolved after the fix', async () => {
    const failed = await waitForState(coordinator, 'node1', 'crashy', 'failed');
    assert.match(failed.failed?.reason ?? '', /exited with code 1; restart budget of 3/);
    assert.equal(failed.restarts, 3, 'restarted three times (the budget), then failed');
    await waitFor(() => hook.accepted.some((r) => (r.body as AlertMessage).condition === 'service-failed'), {
      what: 'the alert',
      timeoutMs: 15_000,
    });
    await waitFor(() => smtp.mails.some((m) => m.subject.includes('service-failed')), {
      what: 'the alert mail',
      timeoutMs: 15_000,
    });
    const events = await listEvents(coordinator, { service: 'crashy' });
    const delays = events.filter((e) => e.type === 'exit').map((e) => Number(e.details?.delayMs));
    assert.equal(delays[0], 0, 'the first restart is immediate');
    assert.ok(
      (delays[1] ?? 0) >= 37 && (delays[1] ?? 0) <= 63,
      `then the back-off starts at 50 ms ±25 % (${delays[1]})`,
    );

    // Still failed a few ticks later: no second alert.
    await waitFor(async () => (await listEvents(coordinator, { type: 'alert-sent' })).length >= 2, {
      what: 'alert-sent events (webhook and mail)',
    });
    const firing = () =>
      hook.accepted.filter(
        (r) => (r.body as AlertMessage).condition === 'service-failed' && (r.body as AlertMessage).status === 'firing',
      );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(firing().length, 1, 'exactly one firing message for the incident');
    assert.equal(
      smtp.mails.filter((m) => m.subject.includes('CRITICAL platform/service-failed')).length,
      1,
      'and exactly one mail',
    );
    assert.match((firing()[0]?.body as AlertMessage | undefined)?.alerts[0]?.subject ?? '', /^crashy@node1$/);

    // The fix: the cause goes away and an administrator restarts it.
    await rm(crashFile);
    const done = await requestRestart(coordinator, {
      service: 'crashy',
      rolling: false,
      by: 'test',
      timeoutMs: 20_000,
    });
    assert.equal(done.state, 'done');
    await waitForState(coordinator, 'node1', 'crashy', 'ready');
    const resolved = () =>
      hook.accepted.filter(
        (r) =>
          (r.body as AlertMessage).condition === 'service-failed' && (r.body as AlertMessage).status === 'resolved',
      );
    await waitFor(() => resolved().length === 1, { what: 'the resolved message', timeoutMs: 15_000 });
    await waitFor(() => smtp.mails.some((m) => m.subject.includes('RESOLVED platform/service-failed')), {
      what: 'the resolved mail',
      timeoutMs: 15_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(resolved().length, 1, 'one resolved message');
    assert.equal(firing().length, 1, 'and still one firing message');
  });

  it('a hung service (liveness failing while the process lives): killed and restarted', async () => {
    const before = await waitForState(coordinator, 'node1', 'api', 'ready');
    await writeFile(hangFile, 'hang');
    await waitFor(async () => (await serviceOn(coordinator, 'node1', 'api'))?.lastExit?.reason.includes('hung'), {
      what: 'the hung service killed',
      timeoutMs: 20_000,
    });
    await rm(hangFile);
    const after = await waitForState(coordinator, 'node1', 'api', 'ready', { notPid: before.pid });
    assert.match(after.lastExit?.reason ?? '', /killed: liveness failed 3 times .* hung/);
    const events = await listEvents(coordinator, { service: 'api', type: 'hung' });
    assert.equal(events.length, 1);
  });
});
