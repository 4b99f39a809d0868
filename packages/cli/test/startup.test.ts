import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { run } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/insitu.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

// A module-loader hook that writes every resolved module URL to a file: what `insitu --help` really loads.
const HOOKS = `import { appendFileSync } from 'node:fs';
let file;
export async function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`;
const REGISTER = (hooks: string, file: string) => `import { register } from 'node:module';
register(${JSON.stringify(hooks)}, { data: { file: ${JSON.stringify(file)} } });
`;

describe('insitu start-up', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('insitu-startup-');
  });
  after(async () => removeDir(dir));

  async function loadedBy(args: string[]): Promise<string[]> {
    const hooks = join(dir, 'hooks.mjs');
    const register = join(dir, 'register.mjs');
    const file = join(dir, `loaded-${args.join('-')}.txt`);
    await writeFile(hooks, HOOKS);
    await writeFile(register, REGISTER(pathToFileURL(hooks).href, file));
    await writeFile(file, '');
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      pathToFileURL(register).href,
      BIN,
      ...args,
    ]);
    assert.match(stdout, /Usage: insitu/);
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  }

  it('insitu --help loads none of the platform packages (server, agent, store, fastify, …)', async () => {
    const loaded = await loadedBy(['--help']);
    assert.ok(
      loaded.some((url) => url.includes('/commander/')),
      'the hook saw the modules it loads',
    );
    const heavy = loaded.filter((url) =>
      /\/packages\/(server|agent|store|tunnel|dbmanager|operator|coord|notify)\/|\/node_modules\/(fastify|kysely|better-sqlite3|etcd3|mysql2|pino)\//.test(
        url,
      ),
    );
    assert.deepEqual(heavy, []);
  });

  it('insitu app --help (a group of commands) loads none of them either', async () => {
    const loaded = await loadedBy(['app', '--help']);
    assert.deepEqual(
      loaded.filter((url) => /\/packages\/(server|agent|store)\/|\/node_modules\/fastify\//.test(url)),
      [],
    );
  });

  // What the README says about getting `insitu` on PATH, run as written there.
  it('npx insitu runs the command from the checkout', async () => {
    const { stdout } = await promisify(execFile)('npx', ['--no-install', 'insitu', '--version'], { cwd: REPO });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('a link to bin/insitu.js in a PATH directory makes `insitu` a command', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await symlink(join(REPO, 'packages/cli/bin/insitu.js'), join(bin, 'insitu'));
    const { stdout } = await promisify(execFile)('insitu', ['app', '--help'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    assert.match(stdout, /Usage: insitu app/);
  });

  it('every command the README lists exists, with the options it shows', async () => {
    const readme = await readFile(join(REPO, 'packages/cli/README.md'), 'utf8');
    const spans = [...readme.matchAll(/`(insitu [^`]+)`/g)].map((m) => m[1] ?? '');
    assert.ok(spans.length > 30, 'the README lists the commands');
    for (const span of spans) {
      const path: string[] = [];
      let alternatives = false;
      for (const token of span.split(/\s+/).slice(1)) {
        if (/^[a-z][a-z-]*$/.test(token)) path.push(token);
        else if (/^[a-z][a-z-]*\\\|/.test(token)) {
          path.push(token.split('\\|')[0] ?? '');
          alternatives = true;
          break;
        } else break;
      }
      const help = await run([...path, '--help']);
      assert.equal(help.code, 0, `${span}: ${help.stderr}`);
      // `a\\|b` lists several sub-commands: their options are checked where they are listed alone.
      if (alternatives || span.includes('\\|')) continue;
      for (const flag of span.match(/--[a-z][a-z-]*/g) ?? [])
        assert.ok(help.stdout.includes(flag), `${path.join(' ')} has ${flag} (README: ${span})`);
    }
  });
});
