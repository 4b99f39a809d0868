import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InsituError, assertValid, loadConfig, waitFor } from '@insitu/core';
import {
  freePort,
  makeTempDir,
  removeDir,
  startSmtpSink,
  startWebhookReceiver,
  type SmtpSink,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import {
  Notifier,
  NotifyConfigSchema,
  createNotifier,
  webhookTarget,
  emailTarget,
  type AlertMessage,
  type DeliveryReport,
} from '../src/index.js';

const FAST_RETRY = { attempts: 4, initialDelayMs: 10, maxDelayMs: 50 };

function config(overrides: Record<string, unknown>) {
  return loadConfig(NotifyConfigSchema, {
    base: { groupWaitMs: 20, retry: { ...FAST_RETRY }, ...structuredClone(overrides) },
  });
}

function hookMessages(hook: WebhookReceiver): AlertMessage[] {
  return hook.accepted.map((h) => h.body as AlertMessage);
}

describe('notify: webhook and SMTP delivery', () => {
  let smtp: SmtpSink;
  let hook: WebhookReceiver;
  before(async () => {
    smtp = await startSmtpSink();
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await smtp.stop();
    await hook.stop();
  });

  it('delivers a firing alert to both a webhook (JSON) and a real SMTP server, then a resolved message', async () => {
    const notifier = createNotifier(
      config({
        webhooks: [{ url: hook.url, headers: { authorization: 'Bearer hook-token' } }],
        email: {
          host: smtp.host,
          port: smtp.port,
          from: 'insitu@example.org',
          to: ['ops@example.org', 'dba@example.org'],
        },
      }),
    );
    try {
      const sentHooks = hook.accepted.length;
      const sentMails = smtp.mails.length;
      notifier.raise({
        cluster: 'platform-db',
        condition: 'replica-sql-error',
        subject: 'db2',
        severity: 'critical',
        summary: 'replication SQL thread stopped twice',
        details: { error: "Error 'Duplicate entry '7' for key 'PRIMARY'' on query", restarts: 1 },
      });
      await notifier.flush();
      assert.equal(hook.accepted.length, sentHooks + 1);
      const body = hook.accepted.at(-1)?.body as AlertMessage;
      assert.equal(hook.accepted.at(-1)?.headers['authorization'], 'Bearer hook-token');
      assert.equal(hook.accepted.at(-1)?.headers['content-type'], 'application/json');
      assert.equal(body.kind, 'insitu.alert');
      assert.equal(body.status, 'firing');
      assert.equal(body.cluster, 'platform-db');
      assert.equal(body.alerts.length, 1);
      assert.equal(body.alerts[0]?.subject, 'db2');
      assert.equal(body.alerts[0]?.details['error'], "Error 'Duplicate entry '7' for key 'PRIMARY'' on query");

      assert.equal(smtp.mails.length, sentMails + 1);
      const mail = smtp.mails.at(-1);
      assert.ok(mail);
      assert.deepEqual(mail.to, ['ops@example.org', 'dba@example.org']);
      assert.equal(mail.from, 'insitu@example.org');
      assert.match(mail.subject, /CRITICAL platform-db\/replica-sql-error: replication SQL thread stopped twice/);
      assert.match(mail.text, /Duplicate entry '7' for key 'PRIMARY'/);
      assert.equal(mail.headers['x-insitu-alert-status'], 'firing');

      assert.equal(
        notifier.resolve(
          { cluster: 'platform-db', condition: 'replica-sql-error', subject: 'db2' },
          'replication runs again',
        ),
        true,
      );
      await notifier.flush();
      const resolved = hook.accepted.at(-1)?.body as AlertMessage;
      assert.equal(resolved.status, 'resolved');
      assert.equal(resolved.alerts[0]?.state, 'resolved');
      assert.equal(resolved.alerts[0]?.summary, 'replication runs again');
      assert.match(smtp.mails.at(-1)?.subject ?? '', /RESOLVED platform-db\/replica-sql-error/);
      assert.deepEqual(notifier.active(), []);
      assert.equal(
        notifier.resolve({ cluster: 'platform-db', condition: 'replica-sql-error', subject: 'db2' }),
        false,
        'resolving twice sends nothing',
      );
    } finally {
      await notifier.close();
    }
  });

  // Regression (test bed): a failover notice went out as a firing alert that nothing ever
  // resolves, so a receiver that tracks firing → resolved kept an incident open for ever.
  it('a one-off notice (event) says so: state and status notice, nothing active, nothing to resolve', async () => {
    const notifier = createNotifier(config({ webhooks: [{ url: hook.url }] }));
    try {
      const sent = hook.accepted.length;
      notifier.event({
        cluster: 'platform-db',
        condition: 'failover',
        subject: 'db2',
        severity: 'critical',
        summary: 'failover: db1 → db2',
      });
      await notifier.flush();
      assert.equal(hook.accepted.length, sent + 1);
      const body = hook.accepted.at(-1)?.body as AlertMessage;
      assert.equal(body.status, 'notice');
      assert.equal(body.alerts[0]?.state, 'notice');
      assert.match(body.title, /CRITICAL platform-db\/failover: failover: db1 → db2/);
      assert.deepEqual(notifier.active(), []);
      assert.equal(notifier.resolve({ cluster: 'platform-db', condition: 'failover', subject: 'db2' }), false);
    } finally {
      await notifier.close();
    }
  });

  it('deduplicates repeated raises and repeats only after the repeat interval', async () => {
    let clock = Date.parse('2030-01-01T00:00:00Z');
    const notifier = createNotifier(config({ webhooks: [{ url: hook.url }], repeatIntervalMs: 60_000 }), {
      now: () => clock,
    });
    try {
      const start = hook.accepted.length;
      const alert = {
        cluster: 'c1',
        condition: 'replica-lag',
        subject: 'db3',
        severity: 'warning' as const,
        summary: 'db3 is 40 s behind',
      };
      assert.equal(notifier.raise(alert), true);
      await notifier.flush();
      for (let i = 0; i < 5; i++) {
        clock += 1000;
        assert.equal(notifier.raise({ ...alert, summary: `db3 is ${41 + i} s behind` }), false);
      }
      await notifier.flush();
      assert.equal(hook.accepted.length, start + 1, 'five more raises inside the interval send nothing');
      clock += 60_000;
      assert.equal(notifier.raise({ ...alert, summary: 'db3 is 120 s behind' }), true);
      await notifier.flush();
      assert.equal(hook.accepted.length, start + 2);
      const repeat = hook.accepted.at(-1)?.body as AlertMessage;
      assert.equal(repeat.alerts[0]?.state, 'repeat');
      assert.equal(repeat.alerts[0]?.count, 7);
      assert.equal(repeat.alerts[0]?.summary, 'db3 is 120 s behind');
      assert.equal(repeat.alerts[0]?.firstSeenAt, '2030-01-01T00:00:00.000Z');
      // A severity that gets worse is sent at once.
      clock += 1000;
      assert.equal(notifier.raise({ ...alert, severity: 'critical', summary: 'db3 is 600 s behind' }), true);
      await notifier.flush();
      assert.equal((hook.accepted.at(-1)?.body as AlertMessage).alerts[0]?.severity, 'critical');
    } finally {
      await notifier.close();
    }
  });

  // Regression (3+2 bed, node loss): a leader sent `primary-down`, lost its leadership before it
  // published that, and the next leader announced it again; a `failover-failed` it never heard of
  // was never resolved. With a commit hook, what goes out is in the handed-over state first.
  it('commit: a message goes out only after its commit, which sees it as sent; a failed commit sends nothing and undoes', async () => {
    const seen: { title: string; snapshot: string[] }[] = [];
    let refuse = false;
    const n = createNotifier(config({ webhooks: [{ url: hook.url }] }), {
      commit: async (message) => {
        seen.push({
          title: message.title,
          snapshot: n.snapshot().map((a) => `${a.item.condition}:${a.notifiedAt === undefined ? 'pending' : 'sent'}`),
        });
        if (refuse) throw new Error('deposed');
      },
    });
    const mine = () => hookMessages(hook).filter((m) => m.cluster === 'commit');
    const alert = { cluster: 'commit', condition: 'c', subject: 'db2', severity: 'critical', summary: 'c' } as const;
    try {
      n.raise(alert);
      await n.flush();
      assert.deepEqual(seen.at(-1)?.snapshot, ['c:sent'], 'the commit sees the alert as announced');
      assert.deepEqual(
        mine().map((m) => m.status),
        ['firing'],
      );

      // Refused: the resolution is not sent, and the alert stays active so that the next resolve() retries.
      refuse = true;
      assert.equal(n.resolve(alert, 'cleared'), true);
      await n.flush();
      assert.deepEqual(
        mine().map((m) => m.status),
        ['firing'],
      );
      assert.deepEqual(
        n.active().map((a) => a.condition),
        ['c'],
      );
      refuse = false;
      assert.equal(n.resolve(alert, 'cleared'), true);
      await n.flush();
      assert.deepEqual(
        mine().map((m) => m.status),
        ['firing', 'resolved'],
      );

      // Refused firing: nothing sent and still unannounced, so the next raise announces it (once).
      refuse = true;
      const d = { ...alert, condition: 'd' };
      n.raise(d);
      await n.flush();
      assert.deepEqual(
        n.snapshot().map((a) => a.notifiedAt),
        [undefined],
      );
      refuse = false;
      n.raise(d);
      n.raise(d);
      await n.flush();
      assert.deepEqual(
        mine().map((m) => `${m.condition}:${m.status}`),
        ['c:firing', 'c:resolved', 'd:firing'],
      );
    } finally {
      await n.close();
    }
  });

  it('hands alerts over: snapshot → restore in another notifier, forget() in the first; one firing, one resolved', async () => {
    const a = createNotifier(config({ webhooks: [{ url: hook.url }] }));
    const b = createNotifier(config({ webhooks: [{ url: hook.url }] }));
    const mine = () => hookMessages(hook).filter((m) => m.cluster === 'handover');
    try {
      assert.equal(
        a.raise({ cluster: 'handover', condition: 'x', subject: 'db3', severity: 'warning', summary: 'x' }),
        true,
      );
      await waitFor(() => mine().find((m) => m.status === 'firing'), { timeoutMs: 5000, what: 'x firing' });
      // Raised but not announced yet (still in its group wait): forgotten, never sent by the first.
      a.raise({ cluster: 'handover', condition: 'y', subject: 'db3', severity: 'warning', summary: 'y' });
      b.restore(a.snapshot());
      assert.equal(
        a.forget(() => true),
        2,
      );
      assert.deepEqual(a.active(), []);
      assert.equal(
        a.resolve({ cluster: 'handover', condition: 'x', subject: 'db3' }),
        false,
        'not the first one’s any more',
      );
      assert.equal(
        b.raise({ cluster: 'handover', condition: 'x', subject: 'db3', severity: 'warning', summary: 'x' }),
        false,
        'announced already: not again',
      );
      assert.equal(b.resolve({ cluster: 'handover', condition: 'x', subject: 'db3' }, 'cleared'), true);
      // y was never announced: the next raise by the new holder announces it.
      b.raise({ cluster: 'handover', condition: 'y', subject: 'db3', severity: 'warning', summary: 'y' });
      await waitFor(() => mine().find((m) => m.condition === 'x' && m.status === 'resolved'), {
        timeoutMs: 5000,
        what: 'x resolved',
      });
      await b.flush();
      await a.flush();
      await waitFor(() => mine().find((m) => m.condition === 'y'), { timeoutMs: 5000, what: 'y firing' });
      assert.deepEqual(
        mine()
          .map((m) => `${m.condition}:${m.status}`)
          .sort(),
        ['x:firing', 'x:resolved', 'y:firing'],
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('groups alerts of one cluster and condition into one message, and keeps conditions apart', async () => {
    const notifier = createNotifier(config({ webhooks: [{ url: hook.url }], groupWaitMs: 200 }));
    try {
      const start = hook.accepted.length;
      notifier.raise({
        cluster: 'c2',
        condition: 'member-down',
        subject: 'db2',
        severity: 'critical',
        summary: 'db2 unreachable',
      });
      notifier.raise({
        cluster: 'c2',
        condition: 'member-down',
        subject: 'db3',
        severity: 'critical',
        summary: 'db3 unreachable',
      });
      notifier.raise({
        cluster: 'c2',
        condition: 'semi-sync-off',
        severity: 'warning',
        summary: 'primary fell back to asynchronous replication',
      });
      notifier.raise({
        cluster: 'other',
        condition: 'member-down',
        subject: 'db2',
        severity: 'critical',
        summary: 'db2 unreachable',
      });
      await waitFor(() => hook.accepted.length >= start + 3, { timeoutMs: 10_000, what: 'three grouped messages' });
      await notifier.flush();
      const messages = hookMessages(hook).slice(start);
      assert.equal(messages.length, 3);
      const down = messages.find((m) => m.cluster === 'c2' && m.condition === 'member-down');
      assert.deepEqual(
        down?.alerts.map((a) => a.subject),
        ['db2', 'db3'],
      );
      assert.match(down?.title ?? '', /\(\+1 more\)/);
      assert.equal(messages.find((m) => m.condition === 'semi-sync-off')?.alerts.length, 1);
      assert.equal(messages.find((m) => m.cluster === 'other')?.alerts.length, 1);
    } finally {
      await notifier.close();
    }
  });

  it('retries a webhook that answers 503 and a mail server that answers 451, with backoff', async () => {
    const notifier = createNotifier(
      config({
        webhooks: [{ url: hook.url }],
        email: { host: smtp.host, port: smtp.port, from: 'a@example.org', to: ['b@example.org'] },
      }),
    );
    const delivered: DeliveryReport[] = [];
    notifier.on('delivered', (report: DeliveryReport) => delivered.push(report));
    try {
      hook.failNext(2, 503);
      smtp.failNext(1, 451);
      const hooksBefore = hook.received.length;
      notifier.raise({ cluster: 'c3', condition: 'failover', severity: 'critical', summary: 'promoted db2' });
      await notifier.flush();
      assert.equal(hook.received.length, hooksBefore + 3, 'two refusals then one success');
      assert.equal(delivered.find((r) => r.target.startsWith('webhook'))?.attempts, 3);
      assert.equal(delivered.find((r) => r.target.startsWith('email'))?.attempts, 2);
      assert.match(smtp.mails.at(-1)?.subject ?? '', /promoted db2/);
    } finally {
      await notifier.close();
    }
  });

  it('does not retry permanent failures (HTTP 400, SMTP 550) and reports them', async () => {
    const notifier = createNotifier(
      config({
        webhooks: [{ url: hook.url }],
        email: { host: smtp.host, port: smtp.port, from: 'a@example.org', to: ['b@example.org'] },
      }),
    );
    const failed: DeliveryReport[] = [];
    notifier.on('failed', (report: DeliveryReport) => failed.push(report));
    try {
      hook.failNext(1, 400);
      smtp.failNext(1, 550, 'mailbox unavailable');
      const hooksBefore = hook.received.length;
      notifier.raise({ cluster: 'c4', condition: 'failover', severity: 'critical', summary: 'x' });
      await notifier.flush();
      assert.equal(hook.received.length, hooksBefore + 1, 'a 400 is not retried');
      assert.equal(failed.length, 2);
      assert.ok(failed.every((f) => f.attempts === 1));
      assert.match(failed.find((f) => f.target.startsWith('email'))?.error?.message ?? '', /mailbox unavailable/);
    } finally {
      await notifier.close();
    }
  });

  it('gives up on an unreachable webhook after its attempts, and close() does not wait for backoff', async () => {
    const port = await freePort();
    const notifier = new Notifier({
      targets: [webhookTarget({ url: `http://127.0.0.1:${port}/nobody`, timeoutMs: 500 })],
      groupWaitMs: 0,
      retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
    });
    const failed: DeliveryReport[] = [];
    notifier.on('failed', (report: DeliveryReport) => failed.push(report));
    notifier.raise({ cluster: 'c5', condition: 'x', severity: 'info', summary: 'x' });
    await notifier.flush();
    assert.equal(failed[0]?.attempts, 3);
    assert.match(failed[0]?.error?.message ?? '', /webhook unreachable/);

    const slow = new Notifier({
      targets: [webhookTarget({ url: `http://127.0.0.1:${port}/nobody`, timeoutMs: 500 })],
      groupWaitMs: 0,
      retry: { attempts: 20, initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    slow.raise({ cluster: 'c5', condition: 'y', severity: 'info', summary: 'y' });
    const started = Date.now();
    await slow.close(200);
    assert.ok(Date.now() - started < 30_000, 'close stopped the 60 s backoff');
    assert.equal(
      slow.raise({ cluster: 'c5', condition: 'z', severity: 'info', summary: 'z' }),
      false,
      'a closed notifier ignores raises',
    );
    await notifier.close();
  });

  it('an email target renders every alert of the message with its details', async () => {
    const target = emailTarget({ host: smtp.host, port: smtp.port, from: 'a@example.org', to: ['b@example.org'] });
    try {
      const before = smtp.mails.length;
      const notifier = new Notifier({ targets: [target], groupWaitMs: 0 });
      notifier.raise({
        cluster: 'c6',
        condition: 'errant-transactions',
        subject: 'db1',
        severity: 'critical',
        summary: 'db1 quarantined',
        details: { errantGtids: ['0-1-101', '0-1-102'] },
      });
      await notifier.flush();
      assert.equal(smtp.mails.length, before + 1);
      assert.match(smtp.mails.at(-1)?.text ?? '', /errantGtids: \["0-1-101","0-1-102"\]/);
    } finally {
      await target.close?.();
    }
  });
});

describe('notify: configuration', () => {
  it('rejects unknown options with a suggestion and bad URLs', () => {
    assert.throws(
      () => assertValid(NotifyConfigSchema, { webhook: [] }, { what: 'notify config', code: 'INSITU_CONFIG_INVALID' }),
      (error: unknown) =>
        error instanceof InsituError &&
        error.code === 'INSITU_CONFIG_INVALID' &&
        /did you mean "webhooks"/.test(error.message),
    );
    assert.throws(() => config({ webhooks: [{ url: 'ftp://x' }] }), /url/);
    assert.throws(() => config({ email: { host: 'h', from: 'a@b.c', to: [] } }), /to/);
  });

  it('reads the SMTP password from a file or a named variable, and says which is missing', async () => {
    const dir = await makeTempDir('insitu-notify-');
    try {
      const file = join(dir, 'smtp-password');
      await writeFile(file, 's3cret\n');
      const email = { host: '127.0.0.1', port: 2525, from: 'a@example.org', to: ['b@example.org'], user: 'alerts' };
      await createNotifier(config({ email: { ...email, passwordFile: file } })).close();
      await createNotifier(config({ email: { ...email, passwordEnv: 'ALERT_SMTP_PASSWORD' } }), {
        env: { ALERT_SMTP_PASSWORD: 'x' },
      }).close();
      assert.throws(
        () => createNotifier(config({ email: { ...email, passwordEnv: 'ALERT_SMTP_PASSWORD' } }), { env: {} }),
        (error: unknown) =>
          error instanceof InsituError &&
          error.code === 'INSITU_CONFIG_INVALID' &&
          /ALERT_SMTP_PASSWORD/.test(error.message),
      );
      assert.throws(
        () => createNotifier(config({ email: { ...email, passwordFile: join(dir, 'missing') } })),
        /cannot read the SMTP password/,
      );
    } finally {
      await removeDir(dir);
    }
  });
});
