import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runChecked, runCommand } from '../src/run-command.js';

const script = fileURLToPath(new URL('../../../../scripts/test-deps.mjs', import.meta.url));

describe('scripts/test-deps.mjs', () => {
  it('prints one line and exits 0 when every binary is installed', async () => {
    const result = await runCommand(process.execPath, [script]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'test-deps: all present\n');
  });

  it('names the packages to install and exits 1 for a non-root user who lacks them', async () => {
    // An empty PATH hides /usr/bin; as root, drop to nobody so that nothing gets installed.
    const asNobody = process.getuid?.() === 0 ? await nobody() : {};
    const result = await runCommand(process.execPath, [script], { env: { PATH: '/nonexistent' }, cwd: '/', ...asNobody });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stderr, /missing .*mariadb\b/);
    assert.match(result.stderr, /apt-get install -y .*mariadb-client/);
    assert.match(result.stderr, /etcd-server/);
  });
});

async function nobody(): Promise<{ uid: number; gid: number }> {
  const [, , uid, gid] = (await runChecked('getent', ['passwd', 'nobody'])).trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
