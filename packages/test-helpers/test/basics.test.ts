import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, makeTempDir, MissingCommandError, removeDir, requireCommand } from '../src/index.js';

describe('freePort', () => {
  it('returns a port that a server can then listen on', async () => {
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  });

  it('never hands out the same port twice, even when asked concurrently', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length);
  });
});

describe('makeTempDir and removeDir', () => {
  it('creates a private dir under the temp dir and removes it with its content', async () => {
    const dir = await makeTempDir('insitu-helpers-test-');
    assert.ok(dir.startsWith(join(tmpdir(), 'insitu-helpers-test-')));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await writeFile(join(dir, 'file'), 'x');
    await removeDir(dir);
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    await removeDir(dir); // already gone: not an error
  });
});

describe('requireCommand', () => {
  it('finds binaries outside PATH such as initdb and mariadbd', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      assert.match(await requireCommand('initdb', 'postgresql'), /^\/usr\/lib\/postgresql\/[\d.]+\/bin\/initdb$/);
      assert.match(await requireCommand('mariadbd', 'mariadb-server'), /^(\/usr)?\/s?bin\/mariadbd$/);
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('names the Debian package and the install script when a binary is missing', async () => {
    await assert.rejects(requireCommand('insitu-no-such-binary', 'insitu-pkg'), (error: unknown) => {
      assert.ok(error instanceof MissingCommandError);
      assert.equal(error.code, 'INSITU_TEST_COMMAND_MISSING');
      assert.match(error.message, /Debian package insitu-pkg/);
      assert.match(error.message, /node scripts\/test-deps\.mjs/);
      assert.match(error.message, /apt-get install -y insitu-pkg/);
      return true;
    });
  });
});
