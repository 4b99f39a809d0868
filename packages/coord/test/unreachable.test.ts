import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { createEtcdCoordinator } from '@insitu/coord';
import { freePort } from '@insitu/test-helpers';

describe('etcd coordinator without etcd', () => {
  it('fails calls and watches with INSITU_COORD_UNAVAILABLE within its deadlines instead of hanging', async () => {
    // A free port with nothing listening: connections are refused.
    const coord = createEtcdCoordinator({
      endpoints: [`http://127.0.0.1:${await freePort()}`],
      dialTimeoutMs: 500,
      callTimeoutMs: 500,
    });
    const isUnavailable = (error: unknown) =>
      error instanceof InsituError && error.code === 'INSITU_COORD_UNAVAILABLE' && error.status === 503;
    try {
      const started = Date.now();
      await assert.rejects(coord.put('k', 'v'), isUnavailable);
      await assert.rejects(
        coord.watchPrefix('k/', () => undefined),
        isUnavailable,
      );
      await assert.rejects(coord.grantLease(2000), isUnavailable);
      assert.ok(Date.now() - started < 30_000);
    } finally {
      await coord.close();
    }
  });
});
