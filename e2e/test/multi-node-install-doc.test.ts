// docs/multi-node-install.md is executed: its YAML blocks are the configs the code accepts,
// its commands are real `insitu` commands, and the unit it installs passes systemd-analyze.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { loadNodeConfig, parseClusterSpec } from '@insitu/operator';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { runInsitu } from './support.js';

const DOC = fileURLToPath(new URL('../../../docs/multi-node-install.md', import.meta.url));

function blocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] ?? '');
}

describe('docs/multi-node-install.md', () => {
  let dir: string;
  let doc: string;
  before(async () => {
    dir = await makeTempDir('insitu-doc-');
    doc = await readFile(DOC, 'utf8');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('node.yaml is a valid node config and cluster.yaml a valid cluster spec', async () => {
    const yamls = blocks(doc, 'yaml');
    const nodeYaml = yamls.find((b) => b.includes('# /etc/insitu/node.yaml'));
    const clusterYaml = yamls.find((b) => b.includes('# cluster.yaml'));
    assert.ok(nodeYaml && clusterYaml);
    const file = join(dir, 'node.yaml');
    await writeFile(file, nodeYaml);
    const config = loadNodeConfig({ file, fileRequired: true });
    assert.equal(config.node, 'mgmt1');
    assert.deepEqual(Object.keys(config.services), ['server', 'dbmanager']);
    assert.equal(config.alerts.groupWaitMs, 30_000, "Alertmanager's defaults");
    assert.equal(config.timing.nodeLeaseTtlMs, 10_000);
    assert.equal(config.timing.leaderLeaseTtlMs, 15_000);
    const spec = parseClusterSpec(clusterYaml);
    assert.deepEqual(spec.services.dbmanager?.placement, { count: 1 });
    assert.equal(spec.services.server?.restart.backoffMaxMs, 60_000);
    for (const service of Object.keys(spec.services))
      assert.ok(config.services[service], `node.yaml says how to run ${service}`);
  });

  it('server.yaml is a valid server config with the drain delay', async () => {
    const serverYaml = blocks(doc, 'yaml').find((b) => b.includes('# /etc/insitu/server.yaml'));
    assert.ok(serverYaml);
    const parsed = parse(serverYaml) as { shutdown: { drainDelayMs: number }; cluster: { coordination: string } };
    assert.equal(parsed.cluster.coordination, 'etcd');
    assert.ok(parsed.shutdown.drainDelayMs > 0);
    const { loadServerConfig } = await import('@insitu/server');
    const file = join(dir, 'server.yaml');
    await writeFile(file, serverYaml);
    const config = loadServerConfig({ file, fileRequired: true });
    assert.equal(config.shutdown.drainDelayMs, parsed.shutdown.drainDelayMs);
  });

  it('every insitu command in it parses (--help) and `node install --systemd` writes a unit systemd-analyze accepts', async () => {
    const commands = blocks(doc, 'sh')
      .flatMap((b) => b.split('\n'))
      .map((l) => l.trim())
      .filter((l) => /^(insitu|node \S+insitu\.js) /.test(l));
    assert.ok(commands.length >= 7);
    for (const command of commands) {
      const words = command.replace(/\s+#.*$/, '').split(/\s+/);
      const start = words[0] === 'node' ? 2 : 1;
      // The sub-command path (words before the first option or argument).
      const path: string[] = [];
      for (const word of words.slice(start)) {
        if (word.startsWith('-') || path.length >= 2) break;
        path.push(word);
      }
      const help = await runInsitu([...path, '--help']);
      assert.equal(help.code, 0, `${command}: ${help.stderr}`);
      for (const option of words.filter((w) => w.startsWith('--')))
        assert.ok(help.stdout.includes(option), `${path.join(' ')} has ${option}`);
    }
    const nodeYaml = blocks(doc, 'yaml').find((b) => b.includes('# /etc/insitu/node.yaml')) ?? '';
    const config = join(dir, 'node.yaml');
    await writeFile(config, stringify(parse(nodeYaml)));
    const unit = join(dir, 'insitu-node.service');
    const installed = await runInsitu(['node', 'install', '--systemd', '--config', config, '--unit-file', unit]);
    assert.equal(installed.code, 0, installed.stderr);
    const text = await readFile(unit, 'utf8');
    assert.match(text, /^Restart=always$/m);
    assert.match(text, /^KillMode=control-group$/m);
    assert.match(text, /ExecStart=\S+node \S+insitu\.js node --config \S+node\.yaml/);
    if (existsSync('/usr/bin/systemd-analyze')) {
      const verify = await promisify(execFile)('/usr/bin/systemd-analyze', ['verify', unit]).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      const problems = verify.stderr
        .split('\n')
        .filter((l) => l.includes('insitu-node.service') && !/Documentation|network-online/.test(l));
      assert.deepEqual(problems, [], verify.stderr);
    }
  });
});
