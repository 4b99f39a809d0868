import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  CONSOLE_OUTPUT as OUTPUT,
  checkPage,
  contextFor as newContext,
  launchChromium,
  signIn as signInAt,
} from './console-browser.js';
import { enrolmentToken, InsituProcess, ok, startAgent, startPlatform } from './support.js';

/*
 * The web console in Debian's Chromium, against a real server and agent: the whole story
 * by clicking. A developer finds a dataset and submits an application; the provider (another
 * user) reviews and approves it; the developer deploys and publishes it, creates a key,
 * tries the service from its docs page, sees the call in usage and audit, and revokes the
 * key; an administrator sees the database topology and verifies the audit chain. Every page
 * is screenshotted into test-output/console/ and checked with axe-core (WCAG 2 A and AA).
 */

const PASSWORD = 'a-long-enough-password';

async function writeApp(dir: string, version = '1.0.0', extra = ''): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'region-totals',
      version,
      runtime: 'node',
      entry: 'index.js',
      datasets: [{ provider: 'acme-data', dataset: 'orders' }],
      endpoints: [
        { method: 'GET', path: '/totals', description: 'Sum of amounts per region' },
        { method: 'POST', path: '/regions/{region}/notes', description: 'Echo a note about a region' },
      ],
    }),
  );
  await writeFile(
    join(dir, 'index.js'),
    `import { readDataset, respond, serve } from '@insitu/sdk';
serve({
  'GET /totals': async () => {
    const out = {};
    for await (const row of readDataset('orders', { groupBy: ['region'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'region' })) out[row.region] = Number(row.total);
    return { totals: out };
  },
  'POST /regions/{region}/notes': async ({ params, query, json }) =>
    respond(201, { region: params.region, limit: query.get('limit'), note: await json() }, { 'x-echo': 'yes' }),
});
${extra}`,
  );
  const tarball = join(dir, '..', `region-totals-${version}.tar`);
  const packed = spawnSync('tar', ['-cf', tarball, '-C', dir, 'insitu.json', 'index.js']);
  assert.equal(packed.status, 0, packed.stderr.toString());
  return tarball;
}

describe('web console in Chromium: the whole story by clicking', () => {
  let dir = '';
  let server: InsituProcess;
  let agent: InsituProcess | undefined;
  let newcomerAgent: InsituProcess | undefined;
  let browser: Browser | undefined;
  let url = '';
  let admin = { email: '', password: '' };
  let tarball = '';
  const checked: string[] = [];
  const perf: Record<string, unknown> = {};

  before(async () => {
    await mkdir(OUTPUT, { recursive: true });
    dir = await makeTempDir('insitu-console-');
    const db = new BetterSqlite3(join(dir, 'orders.db'));
    db.exec(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL, customer_email TEXT)',
    );
    const insert = db.prepare('INSERT INTO orders (region, amount, customer_email) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 30; i++) insert.run(['north', 'south', 'east'][i % 3], i + 1, `buyer${i}@private.example`);
    })();
    db.close();
    await writeFile(
      join(dir, 'agent.yaml'),
      'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\n    datasets:\n      orders: { description: Orders with the region and amount, tags: [sales] }\n',
    );
    tarball = await writeApp(join(dir, 'app'));

    const platform = await startPlatform(dir);
    ({ server, url, admin } = platform);
    const adminToken = platform.adminToken;

    // Organisations and the provider's agent come from sign-up and the CLI; the console story starts at sign-in.
    let acme = { orgId: '', token: '' };
    for (const [name, email] of [
      ['acme', 'ann@acme.test'],
      ['devco', 'dev@devco.test'],
    ] as const) {
      const signup = await ok(
        url,
        'POST',
        '/api/v1/signup',
        undefined,
        { org: { name }, user: { email, name: email.split('@')[0], password: PASSWORD } },
        201,
      );
      await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, adminToken, undefined);
      if (name === 'acme') acme = { orgId: signup.org.id as string, token: signup.session.token as string };
    }
    const providerId = (
      await ok(url, 'POST', '/api/v1/providers', acme.token, { orgId: acme.orgId, name: 'acme-data' }, 201)
    ).id as string;
    agent = await startAgent(dir, url, await enrolmentToken(url, { token: acme.token, providerId }), {
      name: 'agent-a',
    });

    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await newcomerAgent?.stop();
    await agent?.stop();
    await server?.stop();
    await removeDir(dir);
    await writeFile(join(OUTPUT, 'perf.json'), JSON.stringify(perf, null, 2) + '\n').catch(() => undefined);
  });

  async function contextFor(viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
    assert.ok(browser);
    return newContext(browser, viewport);
  }

  async function check(page: Page, name: string): Promise<void> {
    await checkPage(page, name);
    checked.push(name);
  }

  const signIn = (page: Page, email: string, password: string) => signInAt(page, url, email, password);

  const nav = (page: Page, name: string) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

  /** Click `button` until `done` holds: pages refresh on demand, the platform converges on its own time. */
  async function refreshUntil(page: Page, button: string, done: () => Promise<boolean>, what: string): Promise<void> {
    await waitFor(
      async () => {
        await page.getByRole('button', { name: button, exact: true }).click();
        await page.waitForLoadState('networkidle');
        return done();
      },
      { timeoutMs: 60_000, intervalMs: 300, what },
    );
  }

  let dev: Page;
  let provider: Page;
  let apiKey = '';
  let versionUrl = '';

  it('loads the sign-in page within budget and signs in with a cookie session', async () => {
    const context = await contextFor();
    dev = await context.newPage();
    await dev.goto(`${url}/console/`);
    await dev.getByLabel('Email').waitFor();
    const firstLoad = await dev.evaluate<{
      interactiveMs: number;
      domContentLoadedMs: number;
      loadMs: number;
      compressedBytes: number;
      decodedBytes: number;
    }>(`(() => {
      const navigation = performance.getEntriesByType('navigation')[0];
      const assets = performance.getEntriesByType('resource').filter((r) => r.name.includes('/console/assets/'));
      return {
        interactiveMs: Math.round(performance.now()),
        domContentLoadedMs: Math.round(navigation.domContentLoadedEventEnd),
        loadMs: Math.round(navigation.loadEventEnd),
        compressedBytes: navigation.encodedBodySize + assets.reduce((n, r) => n + r.encodedBodySize, 0),
        decodedBytes: navigation.decodedBodySize + assets.reduce((n, r) => n + r.decodedBodySize, 0),
      };
    })()`);
    perf.firstLoad = firstLoad;
    console.log(`console first load: ${JSON.stringify(firstLoad)}`);
    assert.ok(
      firstLoad.compressedBytes > 0 && firstLoad.compressedBytes < 300 * 1024,
      `first load ${firstLoad.compressedBytes} B compressed, budget 300 KB`,
    );
    await check(dev, '01-sign-in');

    await dev.getByLabel('Email').fill('dev@devco.test');
    await dev.getByLabel('Password').fill('wrong-password-here');
    await dev.getByRole('button', { name: 'Sign in' }).click();
    await dev.getByRole('alert').filter({ hasText: 'INSITU_BAD_CREDENTIALS' }).waitFor();
    await dev.getByLabel('Password').fill(PASSWORD);
    await dev.getByRole('button', { name: 'Sign in' }).click();
    await dev.getByRole('navigation', { name: 'Main' }).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'insitu_session');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict', 'HttpOnly, SameSite=Strict session cookie');
    assert.equal(
      (await dev.evaluate<string>('document.cookie')).includes('insitu_session'),
      false,
      'page scripts cannot read the session',
    );
    // Navigation follows roles: operations are for platform administrators only.
    assert.equal(await dev.getByRole('link', { name: 'Operations' }).count(), 0);
  });

  it('finds the dataset by search and facets and sees its schema, never rows', async () => {
    await dev.getByLabel('Search datasets').fill('region amount');
    await dev.getByRole('button', { name: 'Search', exact: true }).click();
    await dev.getByRole('link', { name: 'acme-data/orders' }).waitFor();
    await dev.getByRole('button', { name: 'sales' }).click();
    await dev.waitForURL(/tag=sales/);
    await dev.getByRole('link', { name: 'acme-data/orders' }).waitFor();
    await check(dev, '02-catalog');
    await dev.getByRole('link', { name: 'acme-data/orders' }).click();
    await dev.getByRole('heading', { name: 'acme-data/orders' }).waitFor();
    await dev.getByRole('cell', { name: 'customer_email' }).waitFor();
    assert.ok(!(await dev.content()).includes('private.example'), 'no row value reaches the console');
    await check(dev, '03-dataset');
  });

  it('submits the application as a tarball and sees its version and digest', async () => {
    await nav(dev, 'Applications');
    await dev.getByLabel('Application name').fill('region-totals');
    await dev.getByLabel('Bundle tarball (.tar, .tar.gz)').setInputFiles(tarball);
    await dev.getByRole('button', { name: 'Submit for approval' }).click();
    await dev.getByRole('heading', { name: 'region-totals 1.0.0' }).waitFor();
    versionUrl = dev.url();
    assert.match(await dev.locator('dl.facts').innerText(), /pending[\s\S]*[0-9a-f]{64}/);
    assert.equal(
      await dev.getByRole('button', { name: 'Deploy this version' }).isDisabled(),
      true,
      'nothing runs before approval',
    );
    await check(dev, '04-version-pending');
    await nav(dev, 'Applications');
    await dev.getByRole('link', { name: 'region-totals' }).waitFor();
    await check(dev, '05-applications');
  });

  it('the provider reviews the files and approves with a reason', async () => {
    provider = await (await contextFor()).newPage();
    await signIn(provider, 'ann@acme.test', PASSWORD);
    await nav(provider, 'Approvals');
    await provider.getByRole('link', { name: 'region-totals' }).click();
    await provider.getByRole('heading', { name: 'Review region-totals 1.0.0' }).waitFor();
    await provider.getByRole('button', { name: /^index\.js/ }).click();
    await provider.getByLabel('Contents of index.js').filter({ hasText: 'readDataset' }).waitFor();
    await check(provider, '06-approval-review');
    await provider.getByRole('button', { name: 'Reject' }).click();
    await provider.getByRole('alert').filter({ hasText: 'Say why' }).waitFor();
    await provider.getByLabel('Reason').fill('reads only totals per region');
    await provider.getByRole('button', { name: 'Approve this digest' }).click();
    await provider.getByRole('heading', { name: 'Approvals' }).waitFor();
    await check(provider, '07-approvals');
  });

  it('the developer deploys, sees desired vs actual, and publishes the service', async () => {
    await dev.goto(versionUrl);
    await dev.getByRole('cell', { name: 'reads only totals per region' }).waitFor();
    await dev.getByRole('button', { name: 'Deploy this version' }).click();
    await dev.getByRole('heading', { name: 'Deployments' }).waitFor();
    await refreshUntil(
      dev,
      'Refresh',
      async () => (await dev.locator('td .badge', { hasText: /^running$/ }).count()) > 0,
      'the agent to run the deployment',
    );
    assert.match(await dev.locator('article').first().innerText(), /running 1 of 1/);
    await check(dev, '08-deployments');

    await nav(dev, 'Applications');
    await dev.getByRole('link', { name: 'region-totals' }).click();
    await dev.getByLabel('Service name').fill('regions');
    await dev.getByRole('button', { name: 'Publish', exact: true }).click();
    await dev.getByRole('heading', { name: 'Service regions' }).waitFor();
  });

  it('creates a key shown once, tries the service from its docs page, and sees the call in usage and audit', async () => {
    await nav(dev, 'API keys');
    await dev.getByLabel('Key name').fill('console-key');
    await dev.getByRole('checkbox', { name: 'regions' }).check();
    await dev.getByRole('button', { name: 'Create key' }).click();
    apiKey = (await dev.getByTestId('new-key').innerText()).trim();
    assert.match(apiKey, /^isu_key_/);
    await check(dev, '09-keys');

    await nav(dev, 'Services');
    await dev.getByRole('link', { name: 'regions' }).click();
    await dev.getByRole('heading', { name: 'GET /totals' }).waitFor();
    assert.equal(
      await dev.getByLabel('Your API key for “try it”').inputValue(),
      apiKey,
      'the key just created is at hand, in memory only',
    );
    await dev.getByRole('button', { name: 'Try GET /totals' }).click();
    const answer = dev.locator('article[aria-label="GET /totals"] pre');
    await answer.waitFor();
    assert.deepEqual(JSON.parse(await answer.innerText()), { totals: { east: 165, north: 145, south: 155 } });
    assert.match(await dev.locator('article[aria-label="GET /totals"]').innerText(), /status 200/);

    // Path parameter, query and JSON body from the service's OpenAPI document; the answer's status, headers and body.
    const post = dev.locator('article[aria-label="POST /regions/{region}/notes"]');
    await post.getByLabel('region (path, required)').fill('north & south');
    await post.getByLabel('More query parameters').fill('limit=5');
    await post.getByLabel('Request body').fill('{"text": oops}');
    await post.getByRole('button', { name: 'Try POST /regions/{region}/notes' }).click();
    await post.getByRole('alert').filter({ hasText: 'not valid JSON' }).waitFor();
    await post.getByLabel('Request body').fill('{"text": "hi"}');
    await post.getByRole('button', { name: 'Try POST /regions/{region}/notes' }).click();
    const echoed = post.getByLabel('Response body of POST /regions/{region}/notes');
    await echoed.waitFor();
    assert.deepEqual(JSON.parse(await echoed.innerText()), {
      region: 'north & south',
      limit: '5',
      note: { text: 'hi' },
    });
    assert.match(await post.innerText(), /\/s\/regions\/regions\/north%20%26%20south\/notes\?limit=5 → status 201/);
    await post.getByText(/^Response headers/).click();
    assert.match(await post.locator('dl.facts').innerText(), /x-echo\s+yes/);
    assert.match(await post.locator('dl.facts').innerText(), /insitu-request-id\s+\S+/);
    await check(dev, '10b-try-it');
    await refreshUntil(
      dev,
      'Refresh usage',
      async () => /^[1-9]\d* calls/.test(await dev.getByTestId('usage-total').innerText()),
      'the call to be metered',
    );
    // The usage table shows each period's latency percentiles (bucket bounds of the histogram).
    const usageTable = dev.locator('table', { has: dev.locator('caption', { hasText: 'Calls per' }) });
    assert.match(await usageTable.innerText(), /p50 ms\s+p99 ms/i);
    assert.match(await usageTable.innerText(), /≤ \d+\s+≤ \d+/, 'a period with calls shows p50 and p99');
    await check(dev, '10-service');

    await nav(dev, 'Audit');
    await dev.getByLabel('Service', { exact: true }).fill('regions');
    await dev.getByRole('button', { name: 'Filter' }).click();
    await dev.waitForURL(/service=regions/);
    const row = dev.getByRole('row').filter({ hasText: 'regions' }).filter({ hasText: 'GET' });
    await row.first().waitFor();
    assert.match(await row.first().innerText(), /200/);
    assert.equal(
      await dev.getByRole('button', { name: 'Verify the chain' }).count(),
      0,
      'verification is for administrators',
    );
    await check(dev, '11-audit');
  });

  it('revokes the key, after which "try it" is refused', async () => {
    await nav(dev, 'API keys');
    dev.once('dialog', (dialog) => void dialog.accept());
    await dev.getByRole('button', { name: 'Revoke console-key' }).click();
    await dev.getByRole('row').filter({ hasText: 'console-key' }).locator('.badge', { hasText: 'revoked' }).waitFor();
    await nav(dev, 'Services');
    await dev.getByRole('link', { name: 'regions' }).click();
    // The revoked key is gone from memory; a restricted service's docs need a live key.
    assert.equal(await dev.getByLabel('Your API key for “try it”').inputValue(), '');
    await dev.getByLabel('Your API key for “try it”').fill(apiKey);
    await dev.getByRole('alert').filter({ hasText: 'INSITU_KEY_INVALID' }).waitFor();
    assert.equal(await dev.getByRole('button', { name: 'Try GET /totals' }).count(), 0);
  });

  it('submits version 1.1.0 as a folder; the provider sees what changed since 1.0.0 and rejects it with a reason', async () => {
    await writeApp(join(dir, 'app-1.1.0'), '1.1.0', '// 1.1.0: totals are now rounded by the caller\n');
    await nav(dev, 'Applications');
    await dev.getByRole('link', { name: 'region-totals' }).click();
    await dev.getByLabel('…or a folder').setInputFiles(join(dir, 'app-1.1.0'));
    await dev.getByRole('button', { name: 'Submit for approval' }).click();
    await dev.getByRole('heading', { name: 'region-totals 1.1.0' }).waitFor();

    await nav(provider, 'Approvals');
    await provider.getByRole('link', { name: 'region-totals' }).click();
    await provider.getByRole('heading', { name: 'Review region-totals 1.1.0' }).waitFor();
    await provider.getByRole('heading', { name: 'Changes since 1.0.0' }).waitFor();
    const diff = provider.locator('.diff');
    assert.match(await diff.innerText(), /0 added, 0 removed, 2 changed/);
    assert.match(
      await diff.locator('details', { hasText: 'index.js changed' }).innerText(),
      /\+ \/\/ 1\.1\.0: totals are now rounded by the caller/,
    );
    await check(provider, '17-approval-diff');
    await provider.getByLabel('Reason').fill('not while 1.0.0 is under review');
    await provider.getByRole('button', { name: 'Reject' }).click();
    await provider.getByRole('heading', { name: 'Approvals' }).waitFor();

    await dev.reload();
    await dev.getByRole('cell', { name: 'not while 1.0.0 is under review' }).waitFor();
    assert.match(await dev.locator('dl.facts').innerText(), /rejected/);
  });

  it('the provider sees its agent online and what it runs', async () => {
    await nav(provider, 'Providers');
    const agentRow = provider.getByRole('row').filter({ hasText: 'agent-a' });
    await agentRow.waitFor();
    assert.match(await agentRow.innerText(), /active[\s\S]*1\.0\.0/);
    await check(provider, '12-providers');
  });

  it('an administrator sees the database topology, the nodes and tunnel sessions, and verifies the audit chain', async () => {
    const page = await (await contextFor()).newPage();
    await signIn(page, admin.email, admin.password);
    await nav(page, 'Operations');
    await page.getByRole('heading', { name: 'Database' }).waitFor();
    const facts = await page.locator('section[aria-labelledby="db-title"]').innerText();
    assert.match(facts, /Engine\s+sqlite/);
    await page.getByRole('table', { name: 'Tunnel sessions' }).getByRole('row').nth(1).waitFor();
    // One server alone runs no operator: the page says so rather than showing an empty table.
    await page.getByText('No operator node has joined').waitFor();
    await page.getByText('Nothing yet: open alerts.').waitFor();

    // Silences: create one, then expire it behind a confirmation (cancel first: nothing changes).
    await page.getByLabel('Match label').selectOption('node');
    await page.getByLabel('Value (* matches anything)').fill('node-2');
    await page.getByLabel('For minutes').fill('90');
    await page.getByLabel('Comment').fill('disk swap');
    await page.getByRole('button', { name: 'Silence', exact: true }).click();
    const silences = page.getByRole('table', { name: 'Silences in force' });
    await silences.getByRole('row').filter({ hasText: 'disk swap' }).waitFor();
    await check(page, '13-operations');
    await page.getByRole('button', { name: 'Expire silence node=node-2' }).click();
    const dialog = page.getByRole('dialog', { name: 'Expire this silence?' });
    await dialog.waitFor();
    await check(page, '13b-operations-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await silences.getByRole('row').filter({ hasText: 'disk swap' }).count(), 1, 'cancel keeps it');
    await page.getByRole('button', { name: 'Expire silence node=node-2' }).click();
    await dialog.getByRole('button', { name: 'Expire now' }).click();
    await page.getByText('Nothing yet: silences in force.').waitFor();
    // Both actions are in the event log, under the administrator's id.
    await page.reload();
    const actions = page.getByRole('table', { name: 'Operator actions, newest first' });
    await actions.getByRole('row').filter({ hasText: 'operator.silence-expired' }).waitFor();
    assert.equal(await actions.getByRole('row').filter({ hasText: 'operator.silence-added' }).count(), 1);
    await nav(page, 'Audit');
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Chain intact: [1-9]\d* records verified/ })
      .waitFor();
    await check(page, '14-audit-admin');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Insitu' }).waitFor();
    await page.goto(`${url}/console/operations`);
    await page.getByRole('heading', { name: 'Sign in to Insitu' }).waitFor();
  });

  it('a newcomer signs up; the administrator approves the organisation; the newcomer enrols an agent with the command the page shows', async () => {
    const context = await contextFor();
    const page = await context.newPage();
    await page.goto(`${url}/console/`);
    await page.getByRole('link', { name: 'Create an organisation' }).click();
    await page.getByRole('heading', { name: 'Create an organisation' }).waitFor();
    await page.getByLabel('Organisation name').fill('Not A Slug');
    await page.getByLabel('Your name').fill('Nora');
    await page.getByLabel('Email').fill('nora@newco.test');
    await page.getByLabel('Password').fill('short');
    await check(page, '18-sign-up');
    await page.getByLabel('Organisation name').fill('newco');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create organisation' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // Sign-up needs approval on this platform: creating a provider is refused until then.
    await page.goto(`${url}/console/providers/enrol`);
    await page.getByLabel('Provider name').fill('newco-data');
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page.getByRole('alert').filter({ hasText: 'INSITU_ORG_NOT_ACTIVE' }).waitFor();

    const adminPage = await (await contextFor()).newPage();
    await signIn(adminPage, admin.email, admin.password);
    await nav(adminPage, 'Organisations');
    await adminPage.getByRole('button', { name: 'Approve newco' }).click();
    await adminPage.getByRole('button', { name: 'Suspend newco' }).waitFor();
    await check(adminPage, '19-organisations');
    await adminPage.context().close();

    await page.reload();
    await page.getByLabel('Provider name').fill('newco-data');
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page
      .getByLabel('Provider', { exact: true })
      .locator('option', { hasText: 'newco-data' })
      .waitFor({ state: 'attached' });
    await page.getByLabel('Note (where the agent runs)').fill('rack 4');
    await page.getByRole('button', { name: 'Create enrolment token' }).click();
    const command = (await page.locator('#agent-command').innerText()).trim();
    assert.match(
      command,
      /^insitu agent --platform http:\/\/127\.0\.0\.1:\d+ --token isu_enr_[A-Za-z0-9_-]+ --config agent\.yaml$/,
    );
    await page
      .getByRole('table', { name: 'Enrolment tokens of this provider' })
      .getByRole('row')
      .filter({ hasText: 'rack 4' })
      .waitFor();
    await check(page, '20-enrol');

    // The command as pasted (agent.yaml beside it), with a data directory and a name of its own.
    const args = command.split(' ').slice(1);
    args[args.indexOf('--config') + 1] = join(dir, 'agent.yaml');
    newcomerAgent = new InsituProcess('agent', [
      ...args,
      '--data-dir',
      join(dir, 'newco-agent'),
      '--name',
      'newco-agent',
    ]);
    await newcomerAgent.waitForOutput(/agent running/);
    const tokenRow = page
      .getByRole('table', { name: 'Enrolment tokens of this provider' })
      .getByRole('row')
      .filter({ hasText: 'rack 4' });
    await waitFor(
      async () => {
        await page.reload();
        await tokenRow.waitFor();
        return (await tokenRow.locator('.badge', { hasText: /^used$/ }).count()) === 1;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'the token to show as used' },
    );
    await context.close();
  });

  it('works at a phone width with the menu and the keyboard', async () => {
    const context = await contextFor({ width: 390, height: 844 });
    const page = await context.newPage();
    await signIn(page, 'dev@devco.test', PASSWORD);
    const menu = page.getByRole('button', { name: 'Menu' });
    assert.equal(
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).isVisible(),
      false,
    );
    await menu.focus();
    await page.keyboard.press('Enter');
    assert.equal(await menu.getAttribute('aria-expanded'), 'true');
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Services' })
      .waitFor({ state: 'visible' });
    await check(page, '15-phone-menu');
    // Keyboard: tab to the Services link and follow it.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Services' }).waitFor();
    await check(page, '16-phone-services');
    await context.close();
    console.log(`console pages checked: ${checked.join(', ')}`);
  });
});
