import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AlertMessage } from '@insitu/notify';
import { makeTempDir, removeDir, startWebhookReceiver, type WebhookReceiver } from '@insitu/test-helpers';
import { OperatorAlerts, loadNodeConfig, type AlertCondition, type PublishedAlerts } from '../src/index.js';
import { quietLogger } from './support.js';

// Regression (3+2 bed, node loss of the operator leader's node): the leader published its alerts
// at the end of its tick, so a leader deposed between a message and that publish left the next
// leader a state without it, and the next leader announced the alert again. Now a message goes
// out only after the state that shows it announced is published (`commit`), and a refused commit
// (deposed) sends nothing.
describe('operator alerts: what a leader announces is in the published state first', () => {
  let dir: string;
  let hook: WebhookReceiver;
  before(async () => {
    dir = await makeTempDir('insitu-operator-alerts-');
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook?.stop();
    await removeDir(dir);
  });

  const config = () =>
    loadNodeConfig({
      base: {
        node: 'node1',
        dataDir: dir,
        coord: { endpoints: ['http://unused.invalid:2379'] },
        services: {},
        notify: { webhooks: [{ url: hook.url }], retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 50 } },
        alerts: { groupWaitMs: 20, groupIntervalMs: 0 },
      },
    });
  const down: AlertCondition = {
    condition: 'server-probe-failed',
    subject: 'mgmt2/server',
    severity: 'critical',
    summary: 'the server on mgmt2 does not answer',
    details: { node: 'mgmt2', service: 'server' },
  };
  const messages = () =>
    hook.accepted
      .map((h) => h.body as AlertMessage)
      .map((m) => `${m.condition}/${m.alerts.map((a) => `${a.subject}:${a.state}`).join(',')}`);

  it('the first leader commits before it sends; the next one, restored from that, neither repeats nor misses the resolution', async () => {
    let committed: PublishedAlerts | undefined;
    let refuse = false;
    const first = new OperatorAlerts({
      config: config(),
      node: 'mgmt1',
      record: () => undefined,
      logger: quietLogger(),
      commit: async (published) => {
        if (refuse) throw new Error('the leader key is gone');
        committed = published;
      },
    });
    first.evaluate([down], new Set(), []);
    await first.flush();
    assert.deepEqual(messages(), ['server-probe-failed/mgmt2/server:firing']);
    assert.ok(committed?.active[0]?.notifiedAt !== undefined, 'committed as announced before it went out');

    // Deposed: whatever it would send now is refused and not sent.
    refuse = true;
    first.evaluate([down, { ...down, subject: 'mgmt3/server', details: { node: 'mgmt3' } }], new Set(), []);
    await first.flush();
    assert.deepEqual(messages(), ['server-probe-failed/mgmt2/server:firing']);
    await first.close({ deposed: true });

    // The next leader starts from what was committed: mgmt2 announced, mgmt3 unknown.
    const next = new OperatorAlerts({
      config: config(),
      node: 'mgmt2',
      record: () => undefined,
      logger: quietLogger(),
      restored: committed?.active ?? [],
      commit: async (published) => {
        committed = published;
      },
    });
    next.evaluate([down, { ...down, subject: 'mgmt3/server', details: { node: 'mgmt3' } }], new Set(), []);
    await next.flush();
    next.evaluate([], new Set(), []);
    await next.flush();
    assert.deepEqual(messages(), [
      'server-probe-failed/mgmt2/server:firing',
      'server-probe-failed/mgmt3/server:firing',
      'server-probe-failed/mgmt2/server:resolved,mgmt3/server:resolved',
    ]);
    await next.close({ deposed: false });
  });
});
