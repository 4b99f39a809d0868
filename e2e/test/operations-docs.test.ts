// docs/operations.md and docs/architecture.md are executed: every `insitu` command line in
// their `sh` blocks parses with the real binary, every YAML block that names its file kind
// is accepted by the loader that reads that file, and every relative link (in both pages and
// in README.md) resolves. Nothing in the repository's docs points at ../shared.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAgentConfig } from '@insitu/agent';
import { loadDbManagerConfig } from '@insitu/dbmanager';
import { loadNodeConfig } from '@insitu/operator';
import { loadServerConfig } from '@insitu/server';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { runInsitu } from './support.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OPERATIONS = join(ROOT, 'docs/operations.md');
const ARCHITECTURE = join(ROOT, 'docs/architecture.md');
const README = join(ROOT, 'README.md');

function blocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] ?? '');
}

/** `insitu …` lines of the `sh` blocks, without trailing comments. */
function insituCommands(text: string): string[] {
  return blocks(text, 'sh')
    .flatMap((b) => b.split('\n'))
    .map((l) => l.trim())
    .filter((l) => /^insitu( |$)/.test(l))
    .map((l) => l.replace(/\s+#.*$/, ''));
}

/** Sub-command names listed under "Commands:" in a commander help text. */
function subCommands(help: string): Set<string> {
  const names = new Set<string>();
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return names;
  for (const line of help.slice(at + '\nCommands:\n'.length).split('\n')) {
    const m = /^ {2}(\S+)/.exec(line);
    if (!m) {
      if (line.trim() === '' || /^\S/.test(line)) break;
      continue;
    }
    for (const name of (m[1] ?? '').split('|')) names.add(name);
  }
  return names;
}

const helps = new Map<string, { code: number; stdout: string; stderr: string }>();
async function help(path: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const key = path.join(' ');
  let found = helps.get(key);
  if (!found) {
    found = await runInsitu([...path, '--help']);
    helps.set(key, found);
  }
  return found;
}

/** The sub-command path of a command line: words that the help before them lists as commands. */
async function commandPath(words: string[]): Promise<string[]> {
  const path: string[] = [];
  for (const word of words) {
    if (word.startsWith('-')) break;
    const parent = await help(path);
    if (!subCommands(parent.stdout).has(word)) break;
    path.push(word);
  }
  return path;
}

/** Relative link targets of a markdown text, without their #anchor. */
function relativeLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? '')
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.replace(/#.*$/, ''));
}

describe('docs/operations.md and docs/architecture.md', () => {
  let dir: string;
  let operations: string;
  let architecture: string;
  before(async () => {
    dir = await makeTempDir('insitu-opsdoc-');
    operations = await readFile(OPERATIONS, 'utf8');
    architecture = await readFile(ARCHITECTURE, 'utf8');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('every insitu command line parses: its sub-command has --help and lists each option shown', async () => {
    const commands = [...insituCommands(operations), ...insituCommands(architecture)];
    assert.ok(commands.length >= 25, `found only ${commands.length} commands`);
    const paths = new Set<string>();
    for (const command of commands) {
      const words = command.split(/\s+/).slice(1);
      const path = await commandPath(words);
      paths.add(path.join(' '));
      const shown = await help(path);
      assert.equal(shown.code, 0, `${command}: ${shown.stderr}`);
      assert.ok(
        path.length > 0 || words.length === 0 || words[0] === '--help',
        `${command}: \`${words[0]}\` is not an insitu command`,
      );
      // A word left after the sub-command path is an argument: the usage must take one
      // (a misspelt sub-command of a group would otherwise pass as an argument).
      const next = words[path.length];
      if (next !== undefined && !next.startsWith('-')) {
        const usage = (/^Usage: .*$/m.exec(shown.stdout)?.[0] ?? '').replace(/\[options\]|\[command\]/g, '');
        assert.match(
          usage,
          /[<[]/,
          `${command}: \`insitu ${path.join(' ')}\` has no sub-command or argument \`${next}\``,
        );
      }
      for (const option of words.filter((w) => w.startsWith('--'))) {
        assert.ok(
          new RegExp(`(^|[\\s,])${option}([\\s,=<[]|$)`, 'm').test(shown.stdout),
          `\`insitu ${path.join(' ')} --help\` lists ${option} (from: ${command})`,
        );
      }
    }
    // The day-to-day commands the guide promises are among them.
    for (const path of [
      'status',
      'operator status',
      'operator events',
      'operator restart',
      'alerts list',
      'alerts silence',
      'db status',
      'db switchover',
      'db ack',
      'audit verify',
      'backup',
      'restore',
      'admin reset-password',
      'app logs',
      'key revoke',
    ]) {
      assert.ok(paths.has(path), `operations.md shows \`insitu ${path}\``);
    }
  });

  it('every YAML block naming its file kind is accepted by the real loader', async () => {
    const loaders: Record<string, (file: string) => unknown> = {
      'config.yaml': (file) => loadServerConfig({ file, fileRequired: true }),
      'agent.yaml': (file) => loadAgentConfig(file),
      'node.yaml': (file) => loadNodeConfig({ file, fileRequired: true }),
      'dbmanager.yaml': (file) => loadDbManagerConfig({ file, fileRequired: true }),
    };
    const seen = new Map<string, number>();
    let index = 0;
    for (const block of [...blocks(operations, 'yaml'), ...blocks(architecture, 'yaml')]) {
      const kind = /^# (\S+\.yaml)\s*$/m.exec(block.split('\n')[0] ?? '')?.[1];
      if (!kind) continue;
      const load = loaders[kind];
      assert.ok(load, `no loader for a block marked ${kind}`);
      const file = join(dir, `${index++}-${kind}`);
      await writeFile(file, block);
      assert.doesNotThrow(() => load(file), `a ${kind} block of the docs:\n${block}`);
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    }
    for (const kind of Object.keys(loaders)) assert.ok(seen.get(kind), `operations.md shows a ${kind}`);
    // What the blocks say is what the loaders read (not merely "accepted").
    const server =
      blocks(operations, 'yaml').find((b) => b.startsWith('# config.yaml') && b.includes('followPrimary')) ?? '';
    await writeFile(join(dir, 'cluster-config.yaml'), server);
    const config = loadServerConfig({ file: join(dir, 'cluster-config.yaml'), fileRequired: true });
    assert.equal(config.cluster.coordination, 'etcd');
    assert.equal(config.database.followPrimary, 'platform');
    assert.ok(config.shutdown.drainDelayMs > 0, 'the upgrade section relies on a drain delay');
  });

  it('every relative link in both pages and in README.md resolves', async () => {
    for (const file of [OPERATIONS, ARCHITECTURE, README]) {
      const text = await readFile(file, 'utf8');
      const links = relativeLinks(text);
      assert.ok(links.length > 0, `${file} has links`);
      for (const link of links) assert.ok(existsSync(resolve(dirname(file), link)), `${file}: ${link} does not exist`);
    }
    const readme = await readFile(README, 'utf8');
    assert.ok(relativeLinks(readme).includes('docs/architecture.md'));
    assert.ok(relativeLinks(readme).includes('docs/operations.md'));
  });

  it('nothing in the docs links to ../shared', async () => {
    const files = [
      README,
      ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f)),
    ];
    for (const pkg of await readdir(join(ROOT, 'packages'))) {
      const readme = join(ROOT, 'packages', pkg, 'README.md');
      if (existsSync(readme)) files.push(readme);
    }
    for (const file of files) assert.doesNotMatch(await readFile(file, 'utf8'), /\.\.\/shared\b/, file);
  });
});
