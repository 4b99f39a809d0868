// The switchover and acknowledge routes' own configuration: the dbmanager's admin token
// from a file, a file that cannot be read refused at build time, and a node that follows no
// MySQL cluster answering a coded 409 (the routes themselves are walked against a real
// dbmanager in e2e/test/database-admin-api.test.ts).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { databaseTargets, makeTempDir, removeDir } from '@insitu/test-helpers';
import { type Api, startApi } from './fixtures.js';

const target = databaseTargets()[0];

describe('database admin routes: configuration', { skip: !target }, () => {
  let dir = '';
  const apis: Api[] = [];
  after(async () => {
    for (const api of apis) await api.close();
    if (dir) await removeDir(dir);
  });

  it('reads the token from database.managerTokenFile, refuses an unreadable one, and answers 409 without a cluster to follow', async () => {
    if (!target) return;
    dir = await makeTempDir('insitu-db-admin-config-');
    const missing = join(dir, 'missing-token');
    await assert.rejects(
      startApi(target, { database: { managerTokenFile: missing } }),
      (error: Error & { code?: string }) =>
        error.code === 'INSITU_CONFIG_INVALID' && error.message.includes('database.managerTokenFile'),
    );

    const file = join(dir, 'manager-token');
    await writeFile(file, 'a-dbmanager-admin-token-0123456789\n');
    const api = await startApi(target, { database: { managerTokenFile: file } });
    apis.push(api);
    const answer = await api.call('POST', '/api/v1/cluster/database/switchover', {
      token: api.adminToken,
      body: { to: 'db2' },
    });
    assert.equal(answer.statusCode, 409);
    const error = JSON.parse(answer.body).error as { code: string; message: string };
    assert.equal(error.code, 'INSITU_CONFLICT');
    assert.match(error.message, /follows no MySQL cluster/);

    const noToken = await startApi(target, { database: { followPrimary: 'platform' } });
    apis.push(noToken);
    const refused = await noToken.call('POST', '/api/v1/cluster/database/ack', { token: noToken.adminToken, body: {} });
    assert.equal(refused.statusCode, 409);
    assert.match(JSON.parse(refused.body).error.message as string, /no dbmanager admin token/);
  });
});
