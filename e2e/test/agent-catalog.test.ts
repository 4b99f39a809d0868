import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InsituError, createLogger, waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import BetterSqlite3 from 'better-sqlite3';
import {
  CREDENTIAL_FILE,
  DatasetRegistry,
  MetadataSync,
  PlatformClient,
  obtainCredential,
  openSource,
  parseAgentConfig,
  watchSources,
  type SourceConfig,
} from '@insitu/agent';
import { startPlatform, type TestPlatform } from './agent-platform.js';

const logger = createLogger({ name: 'test', level: 'silent' });

// Values that must never leave the agent.
const SECRETS = ['ZEBRA-7f3a-ROWVALUE', 'QUOKKA-91c2-ROWVALUE', '987654.125', 'p.smith@example.invalid'];

describe('enrolment and metadata sync against a real platform', () => {
  let dir = '';
  let platform: TestPlatform;

  before(async () => {
    dir = await makeTempDir('insitu-agent-cat-');
    platform = await startPlatform(join(dir, 'platform'));
    const db = new BetterSqlite3(join(dir, 'clinic.db'));
    db.exec('CREATE TABLE patients (id INTEGER PRIMARY KEY, code TEXT NOT NULL, email TEXT, balance DECIMAL(12,3))');
    db.prepare('INSERT INTO patients VALUES (?, ?, ?, ?)').run(1, SECRETS[0], SECRETS[3], 987654.125);
    db.prepare('INSERT INTO patients VALUES (?, ?, ?, ?)').run(2, 'other', null, 1);
    db.exec('CREATE TABLE visits (id INTEGER PRIMARY KEY, patient INTEGER NOT NULL, at TIMESTAMP NOT NULL)');
    db.close();
    writeFileSync(join(dir, 'notes.csv'), `id,text,score\n1,${SECRETS[1]},3.5\n2,,4\n`);
  });

  after(async () => {
    await platform?.server.close();
    await removeDir(dir);
  });

  function sources(datasets: Record<string, string>): SourceConfig[] {
    return parseAgentConfig(
      {
        sources: [
          {
            name: 'clinic',
            kind: 'sqlite',
            path: 'clinic.db',
            tables: Object.keys(datasets).filter((t) => t !== 'notes'),
            datasets: Object.fromEntries(
              Object.entries(datasets).map(([t, name]) => [t, { name, description: `the ${t}`, tags: ['health'] }]),
            ),
          },
          ...('notes' in datasets
            ? [
                {
                  name: 'files',
                  kind: 'csv',
                  files: 'notes.csv',
                  datasets: { notes: { name: datasets.notes, visibility: 'org' } },
                },
              ]
            : []),
        ].filter((s) => s.kind === 'csv' || (s.tables?.length ?? 0) > 0),
      },
      { what: 'test', baseDir: dir },
    ).sources;
  }

  async function agent(name: string, token?: string) {
    const client = new PlatformClient(platform.url);
    const result = await obtainCredential({
      client,
      dataDir: join(dir, name),
      ...(token ? { token } : {}),
      name,
      version: 'test',
      logger,
    });
    return { client, ...result };
  }

  function sync(client: PlatformClient, name: string, configured: SourceConfig[], intervalMs = 60_000): MetadataSync {
    const limits = parseAgentConfig({}, { what: 't', baseDir: dir }).limits;
    return new MetadataSync({
      registry: new DatasetRegistry(
        configured.map((s) => openSource(s, limits)),
        logger,
      ),
      client,
      providerId: platform.providerId,
      stateFile: join(dir, name, 'published.json'),
      intervalMs,
      logger,
    });
  }

  it('exchanges the token once, keeps the credential with mode 0600 and reuses it', async () => {
    const token = await platform.newToken();
    const first = await agent('agent-a', token);
    assert.equal(first.enrolled, true);
    assert.equal(first.agent.providerId, platform.providerId);
    const file = join(dir, 'agent-a', CREDENTIAL_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = await agent('agent-a');
    assert.deepEqual([again.enrolled, again.agent.id, again.credential], [false, first.agent.id, first.credential]);
    await assert.rejects(
      agent('agent-x', token),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_TOKEN_INVALID',
      'a token works once',
    );
    await assert.rejects(
      agent('agent-y'),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_USAGE',
      'no credential and no token',
    );
  });

  it('publishes columns, types and row counts, and no row value reaches the platform', async () => {
    const { client } = await agent('agent-a');
    const report = await sync(
      client,
      'agent-a',
      sources({ patients: 'patients', visits: 'visits', notes: 'notes' }),
    ).syncNow();
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.published.sort(), ['notes', 'patients', 'visits']);
    const listed = await platform.api<{
      items: Array<{
        name: string;
        rowCount: number;
        columns: Array<{ name: string; type: string; nullable: boolean }>;
        tags: string[];
      }>;
    }>('GET', `/api/v1/datasets?provider=${platform.providerId}`, platform.adminToken);
    const patients = listed.body.items.find((d) => d.name === 'patients');
    assert.equal(patients?.rowCount, 2);
    assert.deepEqual(
      patients?.columns.map((c) => `${c.name}:${c.type}${c.nullable ? '?' : ''}`),
      ['id:integer', 'code:text', 'email:text?', 'balance:decimal?'],
    );
    assert.deepEqual(patients?.tags, ['health']);
    assert.deepEqual(
      listed.body.items
        .find((d) => d.name === 'notes')
        ?.columns.map((c) => `${c.name}:${c.type}${c.nullable ? '?' : ''}`),
      ['id:integer', 'text:text?', 'score:number'],
    );

    // Everything the platform answers, and everything it stored on disk.
    const answers = [
      listed.text,
      (await platform.api('GET', '/api/v1/datasets?q=patients', platform.adminToken)).text,
      (await platform.api('GET', `/api/v1/datasets?q=${encodeURIComponent('ZEBRA')}`, platform.adminToken)).text,
      ...(await Promise.all(
        listed.body.items.map(
          async (d) =>
            (await platform.api('GET', `/api/v1/datasets/${(d as unknown as { id: string }).id}`, platform.adminToken))
              .text,
        ),
      )),
    ].join('\n');
    const files = readdirSync(join(dir, 'platform')).map((f) => readFileSync(join(dir, 'platform', f)));
    assert.ok(files.length > 0);
    for (const secret of SECRETS) {
      assert.ok(!answers.includes(secret), `${secret} in an API answer`);
      for (const file of files)
        assert.equal(file.indexOf(Buffer.from(secret)), -1, `${secret} in the platform's files`);
    }
    assert.ok(
      files.some((f) => f.includes(Buffer.from('patients'))),
      'the scan does see what was stored',
    );
  });

  it('several agents of one provider: an agent removes only what it published and nobody republished', async () => {
    const { client: a } = await agent('agent-a');
    const b = await agent('agent-b', await platform.newToken());
    await sync(a, 'agent-a', sources({ patients: 'patients', visits: 'visits', notes: 'notes' })).syncNow();
    // agent-b serves "patients" too (a replica of the same database), and publishes after agent-a.
    await sync(b.client, 'agent-b', sources({ patients: 'patients' })).syncNow();
    // agent-a is reconfigured: it no longer serves visits, notes or patients.
    const report = await sync(a, 'agent-a', sources({})).syncNow();
    assert.deepEqual(report.removed.sort(), ['notes', 'visits']);
    assert.deepEqual(report.released, ['patients']);
    const names = (
      await platform.api<{ items: Array<{ name: string }> }>(
        'GET',
        `/api/v1/datasets?provider=${platform.providerId}`,
        platform.adminToken,
      )
    ).body.items.map((d) => d.name);
    assert.deepEqual(names, ['patients']);
  });

  it('re-syncs when a source file changes, and on its timer', async () => {
    const { client } = await agent('agent-b');
    const rowsOf = async () =>
      (
        await platform.api<{ items: Array<{ name: string; rowCount: number }> }>(
          'GET',
          `/api/v1/datasets?provider=${platform.providerId}`,
          platform.adminToken,
        )
      ).body.items.find((d) => d.name === 'notes')?.rowCount;
    const configured = sources({ patients: 'patients', notes: 'notes' });
    const watched = sync(client, 'agent-b', configured);
    await watched.syncNow();
    assert.equal(await rowsOf(), 2);
    const unwatch = watchSources(configured, () => void watched.syncNow(), { debounceMs: 100 });
    try {
      appendFileSync(join(dir, 'notes.csv'), '3,a third note,1\n');
      await waitFor(async () => (await rowsOf()) === 3, { timeoutMs: 30_000, what: 'the change to reach the catalog' });
    } finally {
      unwatch();
    }
    const timed = sync(client, 'agent-b', configured, 200);
    await timed.start();
    try {
      appendFileSync(join(dir, 'notes.csv'), '4,a fourth note,1\n');
      await waitFor(async () => (await rowsOf()) === 4, { timeoutMs: 30_000, what: 'the timer to sync again' });
    } finally {
      timed.stop();
    }
  });
});
