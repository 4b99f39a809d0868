import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { newId } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { enrolmentToken, type InsituProcess, ok, rest, runInsitu, startAgent, startPlatform } from './support.js';

/*
 * Issue 16, item 2, end to end with the real binaries and a real, sandboxed agent. The
 * attack: an attacker names its provider with the victim provider's id, submits an
 * application reading the victim's harmless `weather` (by the victim's name) and `sales`
 * (by the victim's id). The old platform resolved names first, so the `sales` entry was
 * approved by the attacker's own provider, while the victim's agent counted it as
 * declared because the manifest string equalled its id. The victim approved `weather`,
 * the attacker approved `sales`, and the deployed application read the victim's sales.
 */

const PASSWORD = 'a-long-enough-password';
const SECRET = 'card-4111-1111';

async function writeApp(dir: string, victimId: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'steal',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      datasets: [
        { provider: 'shop-data', dataset: 'weather' },
        { provider: victimId, dataset: 'sales' },
      ],
      endpoints: [{ method: 'GET', path: '/read/{dataset}' }],
    }),
  );
  await writeFile(
    join(dir, 'index.js'),
    `import { readDataset, serve } from '@insitu/sdk';
serve({
  'GET /read/{dataset}': async ({ params }) => {
    try {
      const rows = [];
      for await (const row of readDataset(params.dataset, { limit: 100 })) rows.push(row);
      return { rows };
    } catch (error) {
      return { error: error.code ?? String(error) };
    }
  },
});
`,
  );
}

describe("a provider named like the victim provider's id cannot make an approved application read the victim's data", () => {
  let dir = '';
  let server: InsituProcess;
  let agent: InsituProcess | undefined;
  let url = '';
  const shop = { orgId: '', token: '', providerId: '' };
  const evil = { orgId: '', token: '', providerId: '', agentCredential: '' };
  let versionId = '';

  const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);

  before(async () => {
    dir = await makeTempDir('insitu-e2e-names-');
    const db = new BetterSqlite3(join(dir, 'shop.db'));
    db.exec(
      "CREATE TABLE weather (day TEXT PRIMARY KEY, celsius REAL); INSERT INTO weather VALUES ('2026-01-01', 3.5), ('2026-01-02', 4.0);",
    );
    db.exec(
      `CREATE TABLE sales (id INTEGER PRIMARY KEY, card TEXT, amount REAL); INSERT INTO sales VALUES (1, '${SECRET}', 9.5);`,
    );
    db.close();
    await writeFile(
      join(dir, 'agent.yaml'),
      'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./shop.db\n',
    );
    const platform = await startPlatform(dir);
    ({ server, url } = platform);
    const adminToken = platform.adminToken;
    for (const [who, name] of [
      [shop, 'shop'],
      [evil, 'evil'],
    ] as const) {
      const signup = await ok(
        url,
        'POST',
        '/api/v1/signup',
        undefined,
        { org: { name }, user: { email: `boss@${name}.test`, name, password: PASSWORD } },
        201,
      );
      await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, adminToken, undefined);
      who.orgId = signup.org.id;
      who.token = signup.session.token;
      who.providerId = (
        await ok(url, 'POST', '/api/v1/providers', who.token, { orgId: who.orgId, name: `${name}-data` }, 201)
      ).id;
    }
    agent = await startAgent(dir, url, await enrolmentToken(url, shop), { name: 'shop-agent' });
    // The attacker publishes a `sales` dataset of its own (metadata only; it runs no agent).
    const evilToken = await enrolmentToken(url, evil);
    evil.agentCredential = (
      await ok(url, 'POST', '/api/v1/agents/enrol', undefined, { token: evilToken, name: 'evil-agent' }, 201)
    ).credential;
    await ok(
      url,
      'PUT',
      `/api/v1/providers/${evil.providerId}/datasets/sales`,
      evil.agentCredential,
      {
        sourceKind: 'sqlite',
        columns: [{ name: 'id', type: 'integer', nullable: false }],
        rowCount: 0,
      },
      201,
    );
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    await removeDir(dir);
  });

  it("refuses a provider named with the victim's id (coded 400)", async () => {
    const refused = await rest(url, 'POST', '/api/v1/providers', evil.token, {
      orgId: evil.orgId,
      name: shop.providerId,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'INSITU_VALIDATION');
    assert.match(refused.body.error.requestId, /^req_/);
  });

  it("resolves a manifest entry naming the victim's id to the victim, even when a legacy provider bears that name", async () => {
    // What a platform from before the rule could hold: the attacker's provider named with the victim's id.
    withPlatformDb(dir, (db) =>
      db.prepare('UPDATE providers SET name = ? WHERE id = ?').run(shop.providerId, evil.providerId),
    );
    await writeApp(join(dir, 'app'), shop.providerId);
    const submitted = await cli(['app', 'submit', join(dir, 'app'), '--org', evil.orgId, '--json'], evil.token);
    assert.equal(submitted.code, 0, submitted.stderr);
    const version = JSON.parse(submitted.stdout) as {
      id: string;
      approvals: Array<{ providerId: string }>;
      datasets: Array<{ providerId: string; dataset: string }>;
    };
    versionId = version.id;
    assert.deepEqual(
      version.approvals.map((a) => a.providerId),
      [shop.providerId],
      'only the victim is asked',
    );
    assert.deepEqual(
      version.datasets.map((d) => [d.providerId, d.dataset]),
      [
        [shop.providerId, 'weather'],
        [shop.providerId, 'sales'],
      ],
    );
  });

  it("the victim's agent serves only what the victim approved, whatever the manifest names", async () => {
    // The state the old platform left behind (and migration 003 keeps): the `sales` entry was
    // resolved to the attacker's provider, which approved it; the victim approved `weather`.
    withPlatformDb(dir, (db) => {
      const now = Date.now();
      db.prepare(
        "INSERT INTO approvals (id, version_id, provider_id, digest, state, reason, decided_by, decided_at, created_at) SELECT ?, id, ?, digest, 'pending', '', NULL, NULL, ? FROM app_versions WHERE id = ?",
      ).run(newId('apr'), evil.providerId, now, versionId);
      db.prepare('UPDATE app_versions SET datasets = ? WHERE id = ?').run(
        JSON.stringify([
          { providerId: shop.providerId, dataset: 'weather' },
          { providerId: evil.providerId, dataset: 'sales' },
        ]),
        versionId,
      );
    });
    const review = await ok(url, 'GET', '/api/v1/approvals?state=pending', shop.token, undefined);
    const detail = await ok(url, 'GET', `/api/v1/approvals/${review.items[0].id}`, shop.token, undefined);
    assert.deepEqual(detail.datasets, ['weather'], 'the victim is shown what it approves: weather only');
    assert.equal((await cli(['app', 'approve', versionId, '--reason', 'weather is harmless'], shop.token)).code, 0);
    assert.equal((await cli(['app', 'approve', versionId, '--reason', 'my own sales'], evil.token)).code, 0);

    const deployed = await cli(['app', 'deploy', versionId, '--provider', 'shop-data', '--wait', '--json'], evil.token);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.equal(
      (
        await cli(
          ['service', 'publish', 'steal', '--app', (JSON.parse(deployed.stdout) as { appId: string }).appId],
          evil.token,
        )
      ).code,
      0,
    );
    const key = (
      JSON.parse(
        (await cli(['key', 'create', '--org', evil.orgId, '--service', 'steal', '--name', 'k', '--json'], evil.token))
          .stdout,
      ) as { key: string }
    ).key;
    const read = async (dataset: string) => {
      const response = await fetch(`${url}/s/steal/read/${dataset}`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(30_000),
      });
      return { status: response.status, text: await response.text() };
    };
    const weather = await read('weather');
    assert.equal(weather.status, 200, weather.text);
    assert.equal((JSON.parse(weather.text) as { rows: unknown[] }).rows.length, 2, 'the approved dataset is served');
    const sales = await read('sales');
    assert.equal(sales.status, 200, sales.text);
    assert.deepEqual(JSON.parse(sales.text), { error: 'INSITU_DATASET_NOT_DECLARED' });
    assert.ok(!sales.text.includes(SECRET), "the victim's sales rows never reach the application");
  });
});

/** Change the platform's SQLite database directly, as only an old platform or its operator could. */
function withPlatformDb(dir: string, change: (db: BetterSqlite3.Database) => void): void {
  const db = new BetterSqlite3(join(dir, 'platform', 'platform.db'));
  try {
    db.pragma('busy_timeout = 5000');
    change(db);
  } finally {
    db.close();
  }
}
