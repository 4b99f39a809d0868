import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { defaultServerConfig, startServer, type RunningServer } from '../src/index.js';

describe('startServer over a real socket', () => {
  let dir = '';
  let server: RunningServer | undefined;
  after(async () => {
    await server?.close();
    if (dir) await removeDir(dir);
  });

  it('listens on a free port, answers with request ids, and reports unreadiness when the database is gone', async () => {
    dir = await makeTempDir('insitu-server-');
    // No grace for the database: a closed store handle is unready at once (readiness.test.ts has the windows).
    const config = defaultServerConfig({
      listen: { port: 0 },
      log: { level: 'silent' },
      readiness: { databaseGraceMs: 0 },
    });
    server = await startServer({ config, dataDir: dir });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.port > 0);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.match(health.headers.get('insitu-request-id') ?? '', /^req_/);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const echoed = await fetch(`${server.url}/healthz`, {
      headers: { 'insitu-request-id': 'req_01m8a7cchc8ppnvv3j80j9wyp5' },
    });
    await echoed.body?.cancel();
    assert.equal(
      echoed.headers.get('insitu-request-id'),
      'req_01m8a7cchc8ppnvv3j80j9wyp5',
      'a well-formed incoming id is kept',
    );
    const forged = await fetch(`${server.url}/healthz`, { headers: { 'insitu-request-id': 'evil\u0001id' } }).catch(
      () => undefined,
    );
    if (forged) {
      await forged.body?.cancel();
      assert.notEqual(forged.headers.get('insitu-request-id'), 'evil\u0001id');
    }
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.ok(existsSync(join(dir, 'platform.db')), 'the SQLite file lives in the data dir');
    await server.store.close();
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { error: { code: string } }).error.code, 'INSITU_NOT_READY');
    const alive = await fetch(`${server.url}/healthz`);
    assert.equal(alive.status, 200, 'still alive: liveness does not depend on the database');
    await alive.body?.cancel();
  });

  it('fails clearly when the port is taken', async () => {
    const busy = server?.port;
    assert.ok(busy);
    const config = defaultServerConfig({ listen: { port: busy }, log: { level: 'silent' } });
    const other = await makeTempDir('insitu-server-');
    try {
      await assert.rejects(startServer({ config, dataDir: other }), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'INSITU_CONFIG_INVALID');
        assert.match((error as Error).message, /EADDRINUSE/);
        return true;
      });
    } finally {
      await removeDir(other);
    }
  });
});
