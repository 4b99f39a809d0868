import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AlertCondition } from '../src/alerts.js';
import { DeepConditionGate } from '../src/deep-probe.js';

const failed = (condition: string, subject: string): AlertCondition => ({
  condition,
  subject,
  severity: 'warning',
  summary: `${condition} ${subject}`,
  details: {},
});

describe('deep probes: a failed probe alerts only after failing in runs in a row', () => {
  it('holds back one failed run, admits the second, and starts again after a passing run', () => {
    const gate = new DeepConditionGate(2);
    const slow = failed('agent-probe-failed', 'agt1');
    assert.deepEqual(gate.admit([slow]), [], 'one slow probe is not an incident');
    assert.deepEqual(gate.admit([]), [], 'it passed the next time');
    assert.deepEqual(gate.admit([slow]), [], 'a new streak starts at one');
    assert.deepEqual(gate.admit([slow]), [slow], 'two runs in a row: the alert may fire');
    assert.deepEqual(gate.admit([slow]), [slow], 'and stays up while it fails');
  });

  it('counts each probe on its own, and passes conditions with their own duration at once', () => {
    const gate = new DeepConditionGate(2);
    const offline = failed('agent-offline', 'agt1');
    const looping = failed('app-crash-looping', 'dep1');
    const db = failed('database-write-failed', 'node1');
    const etcd = failed('etcd-member-unhealthy', 'http://10.0.0.1:2379');
    assert.deepEqual(gate.admit([offline, looping, db]), [offline, looping]);
    assert.deepEqual(gate.admit([db, etcd]), [db]);
    assert.deepEqual(gate.admit([etcd]), [etcd]);
  });

  it('keeps up what a previous leader raised, without a new streak', () => {
    const gate = new DeepConditionGate(3, [{ condition: 'server-probe-failed', subject: 'node2' }]);
    const server = failed('server-probe-failed', 'node2');
    assert.deepEqual(gate.admit([server]), [server], 'no resolve-and-refire across a change of leader');
    assert.deepEqual(gate.admit([]), []);
    assert.deepEqual(gate.admit([server]), []);
  });

  it('with one run, alerts at once (the setting restores the old behaviour)', () => {
    const gate = new DeepConditionGate(1);
    const server = failed('server-probe-failed', 'node2');
    assert.deepEqual(gate.admit([server]), [server]);
  });
});
