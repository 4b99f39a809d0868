import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  type InsituProcess,
  ok,
  providerAndDeveloper,
  publishApp,
  startAgent,
  startPlatform,
  tunnelYaml,
  WORK_CONNECTION_MODES,
  writeBundle,
} from './support.js';

/*
 * Request bodies on the real path: a platform server, an agent dialling it through the
 * reverse tunnel, and a Python application (the Python SDK) in bubblewrap. A POST body
 * reaches the application whether the caller sent it with a content-length or chunked,
 * and a chunked body over the service's cap is answered 413 INSITU_BODY_TOO_LARGE.
 */

const PASSWORD = 'a-long-enough-password';

const PYTHON_APP = `
import insitu

def echo(request):
    body = request.body()
    return {"length": len(body), "text": body.decode("utf-8"), "json": request.json()}

insitu.serve({"POST /echo": echo})
`;

/** One HTTP/1.1 call, the body sent as given: `chunks` chunked (no content-length), or `body` with a content-length. */
function send(
  url: string,
  key: string,
  options: { body?: string; chunks?: string[] },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}/s/echoes/echo`);
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    else headers['transfer-encoding'] = 'chunked';
    const req = request(target, { method: 'POST', headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    // The gateway may close the connection while an oversized body is still being sent; the answer is what counts.
    req.on('error', (error) => reject(error));
    if (options.body !== undefined) req.end(options.body);
    else {
      for (const chunk of options.chunks ?? []) req.write(chunk);
      req.end();
    }
  });
}

for (const workConnections of WORK_CONNECTION_MODES)
  describe(
    `request bodies to a Python application through the gateway (work connections: ${workConnections})`,
    { timeout: 300_000 },
    () => {
      let dir = '';
      let server: InsituProcess | undefined;
      let agent: InsituProcess | undefined;
      let url = '';
      let key = '';
      let serviceId = '';
      let devToken = '';

      before(async () => {
        dir = await makeTempDir('insitu-e2e-py-');
        const db = new BetterSqlite3(join(dir, 'orders.db'));
        db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL)');
        db.close();
        await writeFile(
          join(dir, 'agent.yaml'),
          'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\n    datasets:\n      orders: { description: Orders }\n' +
            tunnelYaml(workConnections),
        );
        let adminToken: string;
        ({ server, url, adminToken } = await startPlatform(dir));
        const { acme, dev } = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
        devToken = dev.token;
        agent = await startAgent(dir, url, acme.agentToken, { name: 'agent-a' });

        const appDir = join(dir, 'app');
        await writeBundle(
          appDir,
          {
            name: 'echoes',
            version: '1.0.0',
            runtime: 'python',
            entry: 'app.py',
            datasets: [{ provider: 'acme-data', dataset: 'orders' }],
            endpoints: [{ method: 'POST', path: '/echo' }],
          },
          { 'app.py': PYTHON_APP },
        );
        ({ serviceId, key } = await publishApp(url, {
          bundle: appDir,
          service: 'echoes',
          developer: dev,
          approver: acme,
          reason: 'echoes',
          rate: { rate: 1000, burst: 1000 },
        }));
        await waitFor(async () => (await send(url, key, { body: '{}' })).status === 200, {
          timeoutMs: 60_000,
          intervalMs: 200,
          what: 'the Python app to answer through the gateway',
        });
      });

      after(async () => {
        await agent?.stop();
        await server?.stop();
        await removeDir(dir);
      });

      it('passes a body sent with a content-length, on every call', async () => {
        for (let i = 0; i < 3; i++) {
          const answer = await send(url, key, { body: `{"n":${i},"word":"héllo"}` });
          assert.equal(answer.status, 200, answer.text);
          assert.deepEqual(JSON.parse(answer.text).json, { n: i, word: 'héllo' });
        }
      });

      it('passes a body sent chunked (the Python SDK reads chunked bodies)', async () => {
        const answer = await send(url, key, { chunks: ['{"parts":', '[1,2,', '3]}'] });
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(JSON.parse(answer.text), {
          length: 17,
          text: '{"parts":[1,2,3]}',
          json: { parts: [1, 2, 3] },
        });
      });

      it('answers 413 INSITU_BODY_TOO_LARGE to an oversized chunked body, and audits it so', async () => {
        const patched = await ok(url, 'PATCH', `/api/v1/services/${serviceId}`, devToken, { maxRequestBytes: 1024 });
        assert.equal(patched.limits.maxRequestBytes, 1024);
        const big = await send(url, key, { chunks: [`{"a":"${'x'.repeat(800)}`, `${'y'.repeat(800)}"}`] });
        assert.equal(big.status, 413, big.text);
        assert.equal(JSON.parse(big.text).error.code, 'INSITU_BODY_TOO_LARGE');
        const declared = await send(url, key, { body: `{"a":"${'x'.repeat(2000)}"}` });
        assert.equal(declared.status, 413);
        assert.equal(JSON.parse(declared.text).error.code, 'INSITU_BODY_TOO_LARGE');
        const fine = await send(url, key, { chunks: ['{"small":', 'true}'] });
        assert.equal(fine.status, 200, 'the next call is served as usual');
        await waitFor(
          async () => {
            const audit = await ok(url, 'GET', '/api/v1/audit?service=echoes&limit=100', devToken, undefined);
            const refused = (audit.items as Array<{ status: number; errorCode: string }>).filter(
              (r) => r.status === 413,
            );
            return refused.length === 2 && refused.every((r) => r.errorCode === 'INSITU_BODY_TOO_LARGE')
              ? true
              : undefined;
          },
          { timeoutMs: 10_000, intervalMs: 100, what: 'two 413 INSITU_BODY_TOO_LARGE records in the audit' },
        );
      });
    },
  );
