import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { run, start } from './helpers.js';

describe('insitu command line', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('insitu-cli-');
  });
  after(async () => removeDir(dir));

  it('prints help and version, and exits 2 on usage errors with a suggestion', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    for (const command of ['init', 'server', 'up', 'status']) assert.match(help.stdout, new RegExp(`\\b${command}\\b`));
    const upHelp = await run(['up', '--help']);
    assert.equal(upHelp.code, 0);
    assert.match(upHelp.stdout, /--data-dir/);
    assert.equal((await run(['--version'])).code, 0);
    const typo = await run(['up', '--prot', '8080']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown option '--prot'/);
    assert.match(typo.stderr, /Did you mean --port\?/);
    const unknownCommand = await run(['stauts']);
    assert.equal(unknownCommand.code, 2);
    assert.match(unknownCommand.stderr, /Did you mean status\?/);
    const badPort = await run(['server', '--port', '99999']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--port must be a number from 0 to 65535/);
    const badLevel = await run(['server', '--log-level', 'loud']);
    assert.equal(badLevel.code, 2);
    assert.match(badLevel.stderr, /Allowed choices are fatal, error/);
  });

  it('rejects a misspelled environment variable, naming the right one', async () => {
    const result = await run(['status'], { INSITU_DATADIR: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown environment variable INSITU_DATADIR \(did you mean INSITU_DATA_DIR\?\)/);
  });

  it('initialises a data dir once, printing the admin password once, as JSON on request', async () => {
    const dataDir = join(dir, 'init');
    const first = await run(['init', '--data-dir', dataDir, '--admin-email', 'ops@example.test', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { admin: { email: string; password: string }; configFile: string };
    assert.equal(report.admin.email, 'ops@example.test');
    assert.ok(report.admin.password.length >= 20);
    assert.ok(existsSync(join(dataDir, 'platform.db')));
    assert.equal(statSync(report.configFile).mode & 0o777, 0o600);
    assert.ok(
      !readFileSync(report.configFile, 'utf8').includes(report.admin.password),
      'the password is not in the config',
    );
    const second = await run(['init', '--data-dir', dataDir]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /initialised already.*\[INSITU_ALREADY_INITIALISED\]/);
  });

  it('rejects a config file with a misspelled option before starting anything', async () => {
    const dataDir = join(dir, 'init');
    const { writeFile } = await import('node:fs/promises');
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'listen:\n  prot: 80\n');
    const result = await run(['server', '--data-dir', dataDir, '--config', bad]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /listen\.prot: unknown option; did you mean "listen\.port"\?/);
  });

  it('runs the server until interrupted, and status reports it ready (and as JSON)', async () => {
    const dataDir = join(dir, 'init');
    const server = start(['server', '--data-dir', dataDir, '--port', '0', '--log-level', 'info']);
    let stopped = false;
    try {
      const [, url] = await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      assert.ok(url);
      const status = await run(['status', '--url', url, '--json']);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual(JSON.parse(status.stdout), {
        url,
        alive: true,
        ready: true,
        checks: { database: 'ok', coordination: 'ok' },
      });
      const human = await run(['status', '--url', url]);
      assert.match(human.stdout, /: ready/);
      assert.equal(await server.stop(), 0);
      stopped = true;
      const down = await run(['status', '--url', url, '--json']);
      assert.equal(down.code, 1);
      assert.equal(JSON.parse(down.stdout).alive, false);
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('refuses to serve an uninitialised database', async () => {
    const result = await run(['server', '--data-dir', join(dir, 'empty'), '--port', '0']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /run: insitu init .*\[INSITU_NOT_INITIALISED\]/);
  });

  it('a mistyped --data-dir creates nothing, and audit verify on it fails instead of reporting an intact empty log', async () => {
    const typo = join(dir, 'inti');
    const server = await run(['server', '--data-dir', typo, '--port', '0']);
    assert.equal(server.code, 1);
    assert.match(server.stderr, /is --data-dir right\?.*\[INSITU_NOT_INITIALISED\]/);
    assert.ok(!existsSync(typo), 'no directory, no platform.db');
    const verify = await run(['audit', 'verify', '--data-dir', typo]);
    assert.equal(verify.code, 1);
    assert.doesNotMatch(verify.stdout, /chain intact/);
    assert.match(verify.stderr, /no platform database at .*\[INSITU_NOT_INITIALISED\]/);
    assert.ok(!existsSync(typo));
    const json = await run(['audit', 'verify', '--data-dir', typo, '--json']);
    assert.equal(JSON.parse(json.stderr).error.code, 'INSITU_NOT_INITIALISED');
  });

  it('flags with a limit state it: --quota up to 1,000,000,000', async () => {
    const result = await run([
      'service',
      'publish',
      'x',
      '--app',
      'y',
      '--quota',
      '1000000001',
      '--url',
      'http://127.0.0.1:9',
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--quota must be a whole number from 1 to 1,000,000,000, got "1000000001"/);
    const zero = await run(['service', 'publish', 'x', '--app', 'y', '--rate', '0', '--url', 'http://127.0.0.1:9']);
    assert.match(zero.stderr, /--rate must be a whole number from 1 to 1,000,000/);
    // With --json, usage errors are JSON on stderr as well.
    const json = await run(['service', 'publish', 'x', '--app', 'y', '--quota', '0', '--json']);
    assert.equal(json.code, 2);
    const error = (JSON.parse(json.stderr) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'INSITU_USAGE');
    assert.match(error.message, /--quota must be a whole number from 1 to 1,000,000,000/);
  });

  it('a platform that cannot be reached is named with the cause, not just "fetch failed"', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await run([
      'service',
      'invoke',
      'x',
      '/y',
      '-X',
      'POST',
      '-d',
      '{}',
      '--key',
      'isu_key_x',
      '--url',
      `http://127.0.0.1:${port}`,
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}: fetch failed \\(ECONNREFUSED\\) \\[INSITU_REMOTE\\]`),
    );
    // A port curl reaches but Node's fetch refuses (the Fetch standard's blocked ports) is explained.
    const blocked = await run(['service', 'invoke', 'x', '/y', '--key', 'isu_key_x', '--url', 'http://127.0.0.1:6000']);
    assert.match(blocked.stderr, /refuses this port, a blocked port of the Fetch standard.*\[INSITU_REMOTE\]/);
    // A body with GET is a usage error before any request, not "cannot reach" the platform (issue 14).
    const getWithBody = await run([
      'service',
      'invoke',
      'x',
      '/y',
      '-X',
      'get',
      '-d',
      '{}',
      '--key',
      'isu_key_x',
      '--url',
      `http://127.0.0.1:${port}`,
    ]);
    assert.equal(getWithBody.code, 2, getWithBody.stderr);
    assert.match(getWithBody.stderr, /-X GET cannot send a body \(-d\).*\[INSITU_USAGE\]/);
  });

  it('app deploy --wait keeps following a recorded deployment when a poll is dropped or answered 503', async () => {
    const dep = 'dep_01m8y5xp8wp7kn3xz9b0p7ymyj';
    let polls = 0;
    const platform = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      const deployment = (agents: unknown[]) => ({ id: dep, version: '1.0.0', agents });
      if (req.method === 'POST' && req.url === '/api/v1/deployments') {
        res.statusCode = 201;
        res.end(JSON.stringify(deployment([])));
      } else if (req.method === 'GET' && req.url === `/api/v1/deployments/${dep}`) {
        polls++;
        if (polls === 1)
          req.socket.destroy(); // a proxy dropping the connection
        else if (polls === 2) {
          res.statusCode = 503;
          res.end(JSON.stringify({ error: { code: 'INSITU_UNAVAILABLE', message: 'node restarting' } }));
        } else res.end(JSON.stringify(deployment([{ agentId: 'agt_x', state: 'running', ready: 1, desired: 1 }])));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'INSITU_ROUTE_NOT_FOUND', message: req.url } }));
      }
    });
    await new Promise<void>((resolve) => platform.listen({ host: '127.0.0.1', port: 0 }, resolve));
    try {
      const url = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
      const deployed = await run([
        'app',
        'deploy',
        'ver_01m8y5xp8wp7kn3xz9b0p7ymyj',
        '--provider',
        'prv_01m8y5xp8wp7kn3xz9b0p7ymyj',
        '--wait',
        '--timeout',
        '60',
        '--url',
        url,
        '--token',
        'isu_ses_x',
      ]);
      assert.equal(deployed.code, 0, deployed.stderr);
      assert.equal(polls, 3);
      assert.equal(deployed.stderr.match(/the platform did not answer .*; asking again/g)?.length, 2, deployed.stderr);
      // A user error while following is not retried: it ends the command.
      polls = 0;
      platform.removeAllListeners('request');
      platform.on('request', (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.statusCode = _req.method === 'POST' ? 201 : 404;
        if (_req.method !== 'POST') polls++;
        res.end(
          JSON.stringify(
            _req.method === 'POST'
              ? { id: dep, version: '1.0.0', agents: [] }
              : { error: { code: 'INSITU_DEPLOYMENT_NOT_FOUND', message: 'gone' } },
          ),
        );
      });
      const gone = await run([
        'app',
        'deploy',
        'ver_01m8y5xp8wp7kn3xz9b0p7ymyj',
        '--provider',
        'prv_01m8y5xp8wp7kn3xz9b0p7ymyj',
        '--wait',
        '--url',
        url,
        '--token',
        'isu_ses_x',
      ]);
      assert.equal(gone.code, 1, gone.stderr);
      assert.equal(polls, 1);
      assert.match(gone.stderr, /INSITU_DEPLOYMENT_NOT_FOUND/);
    } finally {
      await new Promise<void>((resolve) => platform.close(() => resolve()));
    }
  });

  it('app deploy --wait waits through degraded, and stops at once when a missing instance crash-loops', async () => {
    const dep = 'dep_01m8y5xp8wp7kn3xz9b0p7ymyj';
    let polls = 0;
    let answers: unknown[][] = [];
    const platform = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      const deployment = (agents: unknown[]) => ({ id: dep, version: '1.0.0', state: 'active', agents });
      if (req.method === 'POST' && req.url === '/api/v1/deployments') {
        res.statusCode = 201;
        res.end(JSON.stringify(deployment([])));
      } else if (req.method === 'GET' && req.url === `/api/v1/deployments/${dep}`) {
        res.end(JSON.stringify(deployment(answers[Math.min(polls, answers.length - 1)] ?? [])));
        polls++;
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'INSITU_ROUTE_NOT_FOUND', message: req.url } }));
      }
    });
    await new Promise<void>((resolve) => platform.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const agent = (state: string, ready: number, reason = '') => ({
      agentId: 'agt_x',
      state,
      ready,
      desired: 2,
      reason,
    });
    try {
      const url = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
      const deploy = () =>
        run([
          'app',
          'deploy',
          'ver_01m8y5xp8wp7kn3xz9b0p7ymyj',
          '--provider',
          'prv_01m8y5xp8wp7kn3xz9b0p7ymyj',
          '--wait',
          '--timeout',
          '60',
          '--url',
          url,
          '--token',
          'isu_ses_x',
        ]);
      // Half started: degraded is not done; it follows on until every instance runs.
      answers = [
        [agent('degraded', 1, '1 of 2 instances serve; instance i1 starting [INSITU_NOT_READY]')],
        [agent('running', 2)],
      ];
      const waited = await deploy();
      assert.equal(waited.code, 0, waited.stderr);
      assert.equal(polls, 2);
      assert.match(waited.stderr, /agt_x: degraded 1\/2 \(1 of 2 instances serve/);
      // One instance keeps crashing while the other serves: waiting will not bring it.
      polls = 0;
      answers = [
        [
          agent(
            'degraded',
            1,
            'instance i1 keeps crashing: exited with code 3; 1 of 2 instances serve [INSITU_APP_UNAVAILABLE]',
          ),
        ],
      ];
      const stuck = await deploy();
      assert.equal(stuck.code, 1, stuck.stderr);
      assert.equal(polls, 1);
      assert.match(
        stuck.stderr,
        /insitu: deployment dep_\S+ of 1\.0\.0 is degraded on agent agt_x: 1 of 2 instances serve, the others will not start: instance i1 keeps crashing: exited with code 3.*\[INSITU_NOT_READY\]/,
      );
    } finally {
      await new Promise<void>((resolve) => platform.close(() => resolve()));
    }
  });

  it('service invoke finds the platform as every command does: --url, then INSITU_URL, then the profile of insitu login', async () => {
    // Two stand-in gateways that record what reaches them.
    const seen: Array<{ gateway: string; method: string; url: string; auth: string }> = [];
    const gateway = async (label: string): Promise<{ server: Server; url: string }> => {
      const server = createHttpServer((req, res) => {
        seen.push({
          gateway: label,
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization ?? '',
        });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ gateway: label }));
      });
      await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    };
    const one = await gateway('one');
    const two = await gateway('two');
    try {
      const home = join(dir, 'invoke-home');
      mkdirSync(join(home, '.config', 'insitu'), { recursive: true });
      writeFileSync(
        join(home, '.config', 'insitu', 'profiles.json'),
        JSON.stringify({
          profiles: { default: { url: one.url, sessions: {} }, other: { url: two.url, sessions: {} } },
        }),
        { mode: 0o600 },
      );
      // A directory with no data dir of its own, as a user calling from anywhere.
      const elsewhere = join(dir, 'invoke-elsewhere');
      mkdirSync(elsewhere);
      const invoke = (extra: string[], env: NodeJS.ProcessEnv = {}) =>
        run(
          ['service', 'invoke', 'echo', '/ping', '--key', 'isu_key_k', ...extra],
          { HOME: home, ...env },
          undefined,
          undefined,
          elsewhere,
        );

      const fromProfile = await invoke([]);
      assert.equal(fromProfile.code, 0, fromProfile.stderr);
      assert.deepEqual(JSON.parse(fromProfile.stdout), { gateway: 'one' });
      assert.deepEqual(seen.at(-1), { gateway: 'one', method: 'GET', url: '/s/echo/ping', auth: 'Bearer isu_key_k' });
      const namedProfile = await invoke(['--profile', 'other']);
      assert.deepEqual(JSON.parse(namedProfile.stdout), { gateway: 'two' }, namedProfile.stderr);
      const fromEnv = await invoke([], { INSITU_URL: two.url });
      assert.deepEqual(JSON.parse(fromEnv.stdout), { gateway: 'two' }, fromEnv.stderr);
      const fromFlag = await invoke(['--url', one.url], { INSITU_URL: two.url });
      assert.deepEqual(JSON.parse(fromFlag.stdout), { gateway: 'one' }, fromFlag.stderr);
      assert.equal(seen.length, 4);
    } finally {
      one.server.close();
      two.server.close();
    }
  });
});
