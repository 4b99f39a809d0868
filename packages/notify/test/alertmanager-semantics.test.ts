import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import { startWebhookReceiver, type WebhookReceiver } from '@insitu/test-helpers';
import { Notifier, startHeartbeat, webhookTarget, type AlertItem, type AlertMessage } from '../src/index.js';

const RETRY = { attempts: 2, initialDelayMs: 10, maxDelayMs: 20 };
const alert = (subject: string) => ({
  cluster: 'platform',
  condition: 'service-failed',
  subject,
  severity: 'critical' as const,
  summary: `${subject} failed`,
});

describe('notify: Alertmanager semantics (group interval, mute, one firing and one resolved per incident, handover, heartbeat)', () => {
  let hook: WebhookReceiver;
  before(async () => {
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook.stop();
  });
  const messagesSince = (start: number) => hook.accepted.slice(start).map((r) => r.body as AlertMessage);

  it("holds a busy group's next message until the group interval has passed since its last one", async () => {
    const notifier = new Notifier({
      targets: [webhookTarget({ url: hook.url })],
      groupWaitMs: 20,
      groupIntervalMs: 600,
      retry: RETRY,
    });
    const start = hook.accepted.length;
    notifier.raise(alert('server@node1'));
    await waitFor(() => messagesSince(start).length === 1, { what: 'the first message after the group wait' });
    notifier.raise(alert('server@node2'));
    notifier.resolve(alert('server@node1'));
    await waitFor(() => messagesSince(start).length === 2, { what: 'the second message after the group interval' });
    const [first, second] = messagesSince(start);
    const gap = Date.parse(second?.sentAt ?? '') - Date.parse(first?.sentAt ?? '');
    assert.ok(gap >= 590, `the second message was sent a group interval after the first (${gap} ms)`);
    assert.deepEqual(second?.alerts.map((a) => `${a.subject}:${a.state}`).sort(), [
      'server@node1:resolved',
      'server@node2:firing',
    ]);
    await notifier.close();
  });

  it('leaves muted alerts out and announces them once they are no longer muted; a muted resolution says nothing', async () => {
    const muted = new Set<string>(['server@node3']);
    const notifier = new Notifier({
      targets: [webhookTarget({ url: hook.url })],
      groupWaitMs: 10,
      retry: RETRY,
      dropUnannouncedResolutions: true,
      mute: (item: AlertItem) => muted.has(item.subject),
    });
    const start = hook.accepted.length;
    notifier.raise(alert('server@node3'));
    await notifier.flush();
    assert.equal(messagesSince(start).length, 0, 'a muted alert is not sent');
    muted.clear();
    notifier.raise(alert('server@node3'));
    await notifier.flush();
    assert.deepEqual(
      messagesSince(start).map((m) => m.status),
      ['firing'],
      'sent at the first raise after the mute ended',
    );
    notifier.raise(alert('server@node3'));
    await notifier.flush();
    assert.equal(messagesSince(start).length, 1, 'raised again: deduplicated');
    notifier.resolve(alert('server@node3'));
    await notifier.flush();
    assert.deepEqual(
      messagesSince(start).map((m) => m.status),
      ['firing', 'resolved'],
      'one firing and one resolved message for the incident',
    );

    // An alert raised and resolved before any message announced it: nothing at all.
    notifier.raise(alert('server@node4'));
    notifier.resolve(alert('server@node4'));
    await notifier.flush();
    assert.equal(messagesSince(start).length, 2, 'a blip never announced is never resolved either');
    await notifier.close();
  });

  it('an announced alert that clears while muted (its node lost, inhibited) still gets its resolved message', async () => {
    const muted = new Set<string>();
    const notifier = new Notifier({
      targets: [webhookTarget({ url: hook.url })],
      groupWaitMs: 10,
      retry: RETRY,
      dropUnannouncedResolutions: true,
      mute: (item: AlertItem) => muted.has(item.subject),
    });
    const start = hook.accepted.length;
    notifier.raise(alert('server@node5'));
    await notifier.flush();
    assert.deepEqual(
      messagesSince(start).map((m) => m.status),
      ['firing'],
    );
    muted.add('server@node5');
    notifier.raise(alert('server@node5'));
    notifier.resolve(alert('server@node5'));
    await notifier.flush();
    assert.deepEqual(
      messagesSince(start).map((m) => m.status),
      ['firing', 'resolved'],
      'the incident is closed at the receiver',
    );
    await notifier.close();
  });

  it('a restored snapshot is not announced again by the next notifier, but its resolution is', async () => {
    const first = new Notifier({ targets: [webhookTarget({ url: hook.url })], groupWaitMs: 10, retry: RETRY });
    const start = hook.accepted.length;
    first.raise(alert('dbmanager@node1'));
    await first.flush();
    const snapshot = first.snapshot();
    await first.close();
    assert.equal(snapshot.length, 1);
    assert.ok(snapshot[0]?.notifiedAt !== undefined);

    const second = new Notifier({ targets: [webhookTarget({ url: hook.url })], groupWaitMs: 10, retry: RETRY });
    second.restore(JSON.parse(JSON.stringify(snapshot)));
    second.raise(alert('dbmanager@node1'));
    await second.flush();
    assert.equal(messagesSince(start).length, 1, 'the new notifier does not announce it a second time');
    second.resolve(alert('dbmanager@node1'));
    await second.flush();
    assert.deepEqual(
      messagesSince(start).map((m) => m.status),
      ['firing', 'resolved'],
    );
    await second.close();
  });

  it('beats a heartbeat to its receiver until stopped', async () => {
    const start = hook.received.length;
    const beats: boolean[] = [];
    const heartbeat = startHeartbeat({
      url: `${hook.url}/heartbeat`,
      intervalMs: 50,
      source: 'operator test',
      onBeat: (o) => beats.push(o.ok),
    });
    await waitFor(() => hook.received.length - start >= 3, { what: 'three beats' });
    heartbeat.stop();
    const body = hook.received[start]?.body as { kind: string; source: string; seq: number };
    assert.equal(body.kind, 'insitu.heartbeat');
    assert.equal(body.source, 'operator test');
    assert.equal(body.seq, 1);
    await waitFor(() => beats.length >= 3);
    const count = hook.received.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(hook.received.length <= count + 1, 'no beats after stop (one may have been in flight)');
  });
});
