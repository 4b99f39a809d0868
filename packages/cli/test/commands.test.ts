import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { run, start } from './helpers.js';

/** A small application that echoes what it is sent (POST /echo). */
const ECHO_APP = {
  'insitu.json': JSON.stringify({
    name: 'echo',
    version: '1.0.0',
    description: 'echoes the request',
    runtime: 'node',
    entry: 'index.js',
    datasets: [{ provider: 'demo-retail', dataset: 'stores' }],
    endpoints: [{ method: 'POST', path: '/echo', description: 'echo' }],
  }),
  'index.js': `import { createServer } from 'node:http';
createServer((req, res) => {
  if (req.url === '/healthz') return void res.end('ok');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() })); });
}).listen({ fd: Number(process.env.INSITU_LISTEN_FD) });
`,
};

/** An application that dies at once, every time: a crash loop. */
const CRASH_APP = {
  'insitu.json': JSON.stringify({
    name: 'crasher',
    version: '1.0.0',
    runtime: 'node',
    entry: 'index.js',
    datasets: [{ provider: 'demo-retail', dataset: 'stores' }],
    endpoints: [{ method: 'GET', path: '/x' }],
  }),
  'index.js': `console.error('cannot open settings.json: no such file');\nprocess.exit(3);\n`,
};

async function writeApp(dir: string, files: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe('insitu commands against a running platform (insitu up)', () => {
  let dir = '';
  let dataDir = '';
  let up: ReturnType<typeof start> | undefined;
  let report: { url: string; token: string; key: string; admin: { email: string; password?: string } };
  /** Environment of every command: a private HOME for the profile file. */
  let env: NodeJS.ProcessEnv = {};
  /** Signed in as the platform administrator through the token insitu up printed. */
  const admin = (args: string[]) => run([...args, '--url', report.url, '--token', report.token], env);

  before(async () => {
    dir = await makeTempDir('insitu-commands-');
    dataDir = join(dir, 'data');
    env = { HOME: join(dir, 'home') };
    up = start(['up', '--data-dir', dataDir, '--port', '0', '--json'], env);
    const [line] = await up.waitForOutput(/^\{.*\}$/m, 120_000);
    report = JSON.parse(line) as typeof report;
  });
  after(async () => {
    await up?.stop();
    await removeDir(dir);
  });

  it('insitu up probes its service only once it is routed: no error of its own in the audit log or usage', async () => {
    const audit = await admin(['audit', 'list', '--service', 'sales-insights', '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    const records = JSON.parse(audit.stdout) as Array<{ status: number }>;
    assert.deepEqual(
      records.filter((r) => r.status >= 500),
      [],
    );
    const usage = await admin(['usage', '--service', 'sales-insights', '--json']);
    assert.equal(usage.code, 0, usage.stderr);
    assert.equal(
      (JSON.parse(usage.stdout) as Array<{ errors: number }>).reduce((n, i) => n + i.errors, 0),
      0,
    );
    const log = (await readFile(join(dataDir, 'insitu.log'), 'utf8')).split('\n').filter(Boolean);
    assert.deepEqual(
      log.filter((l) => /"level":"(error|fatal)"/.test(l)),
      [],
      'insitu up logs no error of its own start',
    );
  });

  it('login keeps a session per URL in a 0600 profile file; commands use it; logout forgets it', async () => {
    assert.ok(report.admin.password, 'first run shows the password');
    const login = await run(
      ['login', '--url', report.url, '--email', report.admin.email, '--password-stdin', '--json'],
      env,
      undefined,
      `${report.admin.password}\n`,
    );
    assert.equal(login.code, 0, login.stderr);
    const { file } = JSON.parse(login.stdout) as { file: string };
    assert.equal(file, join(dir, 'home', '.config', 'insitu', 'profiles.json'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const me = await run(['user', 'me', '--url', report.url], env);
    assert.equal(me.code, 0, me.stderr);
    assert.match(me.stdout, /admin@insitu\.local .*platform administrator/);
    // The profile remembers the URL too: no --url needed from another directory.
    const orgs = await run(['org', 'list', '--json'], { ...env });
    assert.equal(orgs.code, 0, orgs.stderr);
    assert.ok((JSON.parse(orgs.stdout) as Array<{ name: string }>).some((o) => o.name === 'demo-retail'));
    // Another profile has no session.
    const other = await run(['user', 'me', '--url', report.url, '--profile', 'ops'], env);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /insitu login.*\[INSITU_USAGE\]/);
    const wrong = await run(
      ['login', '--url', report.url, '--email', report.admin.email, '--password-stdin'],
      env,
      undefined,
      'wrong\n',
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /\[INSITU_BAD_CREDENTIALS\]/);
    const logout = await run(['logout', '--url', report.url], env);
    assert.equal(logout.code, 0, logout.stderr);
    assert.match(logout.stdout, /signed out/);
    assert.ok(!(await readFile(file, 'utf8')).includes('isu_ses_'), 'the token is gone from the file');
    const after = await run(['user', 'me', '--url', report.url], env);
    assert.equal(after.code, 2);
  });

  it('org, member, user, provider and agent token, by name', async () => {
    const created = await admin(['org', 'create', 'acme', '--display-name', 'Acme Ltd', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const org = JSON.parse(created.stdout) as { id: string; name: string };
    const shown = await admin(['org', 'show', 'acme', '--json']);
    assert.equal((JSON.parse(shown.stdout) as { id: string }).id, org.id);
    const added = await run(
      [
        'member',
        'add',
        'acme',
        'dev@acme.test',
        '--role',
        'developer',
        '--role',
        'provider',
        '--password-stdin',
        '--url',
        report.url,
        '--token',
        report.token,
      ],
      env,
      undefined,
      'a-long-enough-password-1\n',
    );
    assert.equal(added.code, 0, added.stderr);
    const members = await admin(['member', 'list', 'acme', '--json']);
    const list = JSON.parse(members.stdout) as Array<{ user: { email: string }; roles: string[] }>;
    assert.deepEqual(
      list.map((m) => [m.user.email, [...m.roles].sort()]),
      [['dev@acme.test', ['developer', 'provider']]],
    );
    const users = await admin(['user', 'list']);
    assert.match(users.stdout, /dev@acme\.test/);
    const provider = await admin(['provider', 'create', 'acme-data', '--org', 'acme', '--json']);
    assert.equal(provider.code, 0, provider.stderr);
    const providers = await admin(['provider', 'list', '--org', 'acme']);
    assert.match(providers.stdout, /acme-data/);
    const token = await admin(['agent', 'token', 'acme-data', '--note', 'rack 3']);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^isu_enr_\S+\n$/);
    assert.match(token.stderr, /insitu agent --platform .* --token isu_enr_/);
    const removed = await admin(['member', 'remove', 'acme', 'dev@acme.test']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((JSON.parse((await admin(['member', 'list', 'acme', '--json'])).stdout) as unknown[]).length, 0);
    const missing = await admin(['member', 'list', 'no-such-org', '--json']);
    assert.equal(missing.code, 1);
    assert.deepEqual(JSON.parse(missing.stderr), {
      error: { code: 'INSITU_ORG_NOT_FOUND', message: 'no organisation no-such-org that you may see' },
    });
  });

  it('catalog search and show: metadata, never rows', async () => {
    const found = await admin(['catalog', 'search', 'sales', '--json']);
    assert.equal(found.code, 0, found.stderr);
    assert.ok((JSON.parse(found.stdout) as Array<{ name: string }>).some((d) => d.name === 'sales'));
    const byTag = await admin(['catalog', 'search', '--tag', 'weather']);
    assert.match(byTag.stdout, /demo-retail\/weather/);
    const shown = await admin(['catalog', 'show', 'demo-retail/stores']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /floor_area_m2 +number +Sales floor area/);
    assert.match(shown.stdout, /^ {2}output policy: none$/m);
    const none = await admin(['catalog', 'show', 'demo-retail/nope']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /\[INSITU_DATASET_NOT_FOUND\]/);
  });

  it('an application from submit to a POSTed call without --url, then keys, grants, audit, usage, events and teardown', async () => {
    const appDir = await writeApp(join(dir, 'echo'), ECHO_APP);
    const submitted = await admin(['app', 'submit', appDir, '--org', 'demo-analytics']);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.match(submitted.stdout, /submitted echo 1\.0\.0 as ver_\S+/);
    assert.match(submitted.stdout, /application: echo \(app_\S+\)/);
    const pending = await admin(['app', 'approvals', '--state', 'pending', '--json']);
    assert.deepEqual(
      (JSON.parse(pending.stdout) as Array<{ appName: string; version: string }>).map(
        (a) => `${a.appName}@${a.version}`,
      ),
      ['echo@1.0.0'],
    );
    const approved = await admin(['app', 'approve', 'echo@1.0.0']);
    assert.equal(approved.code, 0, approved.stderr);
    const versions = await admin(['app', 'versions', 'echo', '--json']);
    assert.equal((JSON.parse(versions.stdout) as Array<{ state: string }>)[0]?.state, 'approved');
    const apps = await admin(['app', 'list', '--org', 'demo-analytics']);
    assert.match(apps.stdout, /echo/);
    const deployed = await admin(['app', 'deploy', 'echo@1.0.0', '--provider', 'demo-retail', '--wait', '--json']);
    assert.equal(deployed.code, 0, deployed.stderr);
    const deployment = JSON.parse(deployed.stdout) as { id: string; agents: Array<{ state: string }> };
    assert.equal(deployment.agents[0]?.state, 'running');
    const published = await admin([
      'service',
      'publish',
      'echo',
      '--app',
      'echo',
      '--access',
      'restricted',
      '--quota',
      '1000000000',
    ]);
    assert.equal(published.code, 0, published.stderr);
    const granted = await admin(['service', 'grant', 'echo', '--org', 'demo-analytics']);
    assert.equal(granted.code, 0, granted.stderr);
    const keyRun = await admin(['key', 'create', '--org', 'demo-analytics', '--service', 'echo', '--name', 'echo-key']);
    assert.equal(keyRun.code, 0, keyRun.stderr);
    const key = keyRun.stdout.trim();

    // The reported bug: a POST with a body through `service invoke`, the platform found from the data dir alone
    // (its config says port 0: the running platform's real address comes from the data dir's run file), method lower-case.
    const invoked = await run(
      [
        'service',
        'invoke',
        'echo',
        '/echo',
        '-X',
        'post',
        '-d',
        '{"city":"Zürich"}',
        '--key',
        key,
        '--data-dir',
        dataDir,
      ],
      env,
    );
    assert.equal(invoked.code, 0, invoked.stderr);
    assert.deepEqual(JSON.parse(invoked.stdout), { method: 'POST', url: '/echo', body: '{"city":"Zürich"}' });
    // -d without -X is a POST, as with curl (it was a GET with a body, which fetch refuses).
    const posted = await run(
      ['service', 'invoke', 'echo', '/echo', '-d', '{"n":1}', '--key', key, '--url', report.url],
      env,
    );
    assert.equal(posted.code, 0, posted.stderr);
    assert.deepEqual(JSON.parse(posted.stdout), { method: 'POST', url: '/echo', body: '{"n":1}' });

    const services = await admin(['service', 'list', '--json']);
    assert.ok(
      (JSON.parse(services.stdout) as Array<{ name: string; access: string }>).some(
        (s) => s.name === 'echo' && s.access === 'restricted',
      ),
    );
    const keys = await admin(['key', 'list', '--org', 'demo-analytics', '--json']);
    const echoKey = (
      JSON.parse(keys.stdout) as Array<{ id: string; name: string; state: string; lastUsedHour: string | null }>
    ).find((k) => k.name === 'echo-key');
    assert.ok(echoKey?.lastUsedHour, 'the key shows its last use');
    const audit = await admin(['audit', 'list', '--service', 'echo', '--json']);
    assert.deepEqual(
      (JSON.parse(audit.stdout) as Array<{ method: string; status: number; keyId: string }>).map((r) => [
        r.method,
        r.status,
        r.keyId,
      ]),
      [
        ['POST', 200, echoKey.id],
        ['POST', 200, echoKey.id],
      ],
    );
    const usage = await admin(['usage', '--key', echoKey.id, '--json']);
    assert.equal(
      (JSON.parse(usage.stdout) as Array<{ calls: number }>).reduce((n, i) => n + i.calls, 0),
      2,
    );
    const withCalls = (JSON.parse(usage.stdout) as Array<{ calls: number; p50Ms?: number; p99Ms?: number }>).filter(
      (i) => i.calls > 0,
    );
    assert.ok(
      withCalls.length > 0 && withCalls.every((i) => typeof i.p50Ms === 'number' && typeof i.p99Ms === 'number'),
    );
    const table = await admin(['usage', '--key', echoKey.id]);
    assert.match(table.stdout, /P50 MS\s+P99 MS/);
    assert.match(table.stdout, /≤\d+\s+≤\d+/, 'a period with calls shows its percentiles');
    const revoked = await admin(['key', 'revoke', echoKey.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const refused = await run(
      ['service', 'invoke', 'echo', '/echo', '-X', 'POST', '-d', '{}', '--key', key, '--url', report.url],
      env,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /INSITU_KEY_INVALID/);
    const events = await admin(['events', '--subject', deployment.id, '--json']);
    assert.ok(
      events.stdout
        .split('\n')
        .filter(Boolean)
        .some((l) => (JSON.parse(l) as { kind: string }).kind === 'deployment.created'),
    );

    const unpublished = await admin(['service', 'unpublish', 'echo']);
    assert.equal(unpublished.code, 0, unpublished.stderr);
    const undeployed = await admin(['app', 'undeploy', deployment.id, '--json']);
    assert.equal(undeployed.code, 0, undeployed.stderr);
    assert.equal((JSON.parse(undeployed.stdout) as { state: string }).state, 'removed');
  });

  it('events --follow prints new events as they happen, until interrupted', async () => {
    const follow = start(['events', '--follow', '--limit', '1', '--url', report.url, '--token', report.token], env);
    try {
      await follow.waitForOutput(/\S/, 10_000);
      const created = await admin([
        'key',
        'create',
        '--org',
        'demo-analytics',
        '--service',
        'sales-insights',
        '--name',
        'followed-key',
      ]);
      assert.equal(created.code, 0, created.stderr);
      await follow.waitForOutput(/key\.created .*followed-key/, 15_000);
    } finally {
      assert.equal(await follow.stop(), 0);
    }
  });

  it('app reject needs a reason, and the developer sees it', async () => {
    const appDir = await writeApp(join(dir, 'echo2'), {
      ...ECHO_APP,
      'insitu.json': ECHO_APP['insitu.json'].replace('"1.0.0"', '"1.0.1"'),
    });
    assert.equal((await admin(['app', 'submit', appDir, '--org', 'demo-analytics'])).code, 0);
    const rejected = await admin(['app', 'reject', 'echo@1.0.1', '--reason', 'reads more than it needs']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /demo-retail rejected echo 1\.0\.1/);
    const approvals = await admin(['app', 'approvals', '--of', 'echo@1.0.1', '--json']);
    assert.deepEqual(
      (JSON.parse(approvals.stdout) as Array<{ state: string; reason: string }>).map((a) => [a.state, a.reason]),
      [['rejected', 'reads more than it needs']],
    );
  });

  it('app deploy --wait on a crash-looping application stops at the crash loop with a coded error and the reason', async () => {
    const appDir = await writeApp(join(dir, 'crasher'), CRASH_APP);
    assert.equal((await admin(['app', 'submit', appDir, '--org', 'demo-analytics'])).code, 0);
    assert.equal((await admin(['app', 'approve', 'crasher@1.0.0'])).code, 0);
    const deployed = await admin([
      'app',
      'deploy',
      'crasher@1.0.0',
      '--provider',
      'demo-retail',
      '--wait',
      '--timeout',
      '120',
    ]);
    assert.equal(deployed.code, 1, deployed.stderr);
    assert.doesNotMatch(deployed.stderr, /internal error|\n\s+at /);
    assert.match(
      deployed.stderr,
      /insitu: deployment dep_\S+ of 1\.0\.0 is crash-looping on agent agt_\S+: .*\[INSITU_APP_UNAVAILABLE\]/,
    );
    assert.match(deployed.stderr, /exit|code 3|settings\.json/);
    // With --json, the error is JSON on stderr too (here: the same version deployed there already).
    const json = await admin(['app', 'deploy', 'crasher@1.0.0', '--provider', 'demo-retail', '--wait', '--json']);
    assert.equal(json.code, 1);
    const error = (JSON.parse(json.stderr) as { error: { code: string; message: string } }).error;
    assert.match(error.code, /^INSITU_[A-Z_]+$/);
    assert.ok(error.message.length > 0);
  });

  it('backup while running, restore into a new data dir, and reset the admin password there', async () => {
    const file = join(dir, 'backup.tar.gz');
    const backup = await run(['backup', '--to', file, '--data-dir', dataDir, '--json'], env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const files = (JSON.parse(backup.stdout) as { files: string[] }).files;
    assert.deepEqual(files.slice(0, 3), ['platform.db', 'config.yaml', 'tls']);
    assert.ok(files.includes('audit-anchor.key'), `the anchor's signing key is in the backup: ${files.join(', ')}`);
    const target = join(dir, 'restored');
    const restored = await run(['restore', file, '--data-dir', target], env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.ok(existsSync(join(target, 'tls', 'ca.pem')));
    assert.equal(
      await readFile(join(target, 'tls', 'ca.pem'), 'utf8'),
      await readFile(join(dataDir, 'tls', 'ca.pem'), 'utf8'),
      'the CA agents pin survives',
    );
    assert.equal(
      await readFile(join(target, 'audit-anchor.key'), 'utf8'),
      await readFile(join(dataDir, 'audit-anchor.key'), 'utf8'),
      "the audit anchor's signing key survives",
    );
    const again = await run(['restore', file, '--data-dir', target], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /--force.*\[INSITU_ALREADY_INITIALISED\]/);
    const busy = await run(['restore', file, '--data-dir', dataDir, '--force'], env);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /running.*\[INSITU_CONFLICT\]/);
    const verify = await run(['audit', 'verify', '--data-dir', target, '--json'], env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.ok((JSON.parse(verify.stdout) as { records: number }).records >= 1);
    const reset = await run(['admin', 'reset-password', '--data-dir', target, '--json'], env);
    assert.equal(reset.code, 0, reset.stderr);
    const { password, email } = JSON.parse(reset.stdout) as { password: string; email: string };
    const server = start(['server', '--data-dir', target, '--port', '0'], env);
    try {
      const [, url] = await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      assert.ok(url);
      const login = await run(
        ['login', '--url', url, '--email', email, '--password-stdin', '--profile', 'restored'],
        env,
        undefined,
        password,
      );
      assert.equal(login.code, 0, login.stderr);
      const services = await run(['service', 'list', '--url', url, '--profile', 'restored', '--json'], env);
      assert.equal(services.code, 0, services.stderr);
      assert.ok(
        (JSON.parse(services.stdout) as Array<{ name: string }>).some((s) => s.name === 'sales-insights'),
        'the restored platform has the data',
      );
    } finally {
      await server.stop();
    }
  });
});
