import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { chmod, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../src/index.js';
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
    // nobody may not be able to read the checkout (CI clones into a 0700 temp dir): run a copy.
    const dir = await makeTempDir('insitu-test-deps-');
    await chmod(dir, 0o755);
    const copy = join(dir, 'test-deps.mjs');
    await copyFile(script, copy);
    await chmod(copy, 0o644);
    let result;
    try {
      result = await runCommand(process.execPath, [copy], { env: { PATH: '/nonexistent' }, cwd: '/', ...asNobody });
    } finally {
      await removeDir(dir);
    }
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
