import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import {
  TunnelClient,
  createPlatformCa,
  createTunnelServer,
  issueServerCertificate,
  type TunnelServer,
} from '@insitu/tunnel';
import { credentialFor, credentials, echoHandler, text } from './helpers.js';

describe('tunnel over TLS with the platform CA pinned', () => {
  let server: https.Server | undefined;
  let tunnel: TunnelServer | undefined;
  const clients: TunnelClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close(200)));
    await tunnel?.close(200);
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('issues a CA and a server certificate that node verifies', async () => {
    const ca = await createPlatformCa();
    const leaf = await issueServerCertificate(ca, { hosts: ['localhost', '127.0.0.1'] });
    const caCert = new X509Certificate(ca.certPem);
    const leafCert = new X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(leafCert.ca, false);
    assert.equal(leafCert.verify(caCert.publicKey), true);
    assert.equal(leafCert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leafCert.checkHost('localhost'), 'localhost');
  });

  it('connects with the pinned CA, refuses a platform signed by another CA, and refuses plain text unless allowed', async () => {
    const ca = await createPlatformCa();
    const leaf = await issueServerCertificate(ca, { hosts: ['localhost', '127.0.0.1'] });
    const otherCa = await createPlatformCa({ commonName: 'Somebody else' });
    const tls = createTunnelServer({
      nodeId: 'tls-node',
      authenticate: async (credential) => credentials.get(credential),
      allowPlainText: () => false,
    });
    tunnel = tls;
    const listening = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) =>
      res.writeHead(404).end(),
    );
    server = listening;
    listening.on('upgrade', (req, socket: Socket, head: Buffer) => {
      if (!tls.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(listening.address() as AddressInfo).port}`;

    const good = new TunnelClient({
      platforms: [url],
      credential: credentialFor('agt_tls', 'prv_tls'),
      ca: ca.certPem,
      handler: echoHandler('tls'),
      services: [{ key: 'app@1.0.0' }],
      backoff: { baseMs: 50, maxMs: 200 },
    });
    clients.push(good.start());
    await waitFor(() => tls.table.candidates('prv_tls', 'app@1.0.0').length === 1, {
      what: 'the TLS session routable',
    });
    const response = await tls.request({ providerId: 'prv_tls', method: 'GET', path: '/secure' });
    assert.equal(JSON.parse(await text(response)).path, '/secure');

    const wrong = new TunnelClient({
      platforms: [url],
      credential: credentialFor('agt_wrongca', 'prv_tls'),
      ca: otherCa.certPem,
      handler: echoHandler('x'),
      backoff: { baseMs: 50, maxMs: 200 },
    });
    clients.push(wrong.start());
    await waitFor(() => wrong.status().lastError, { what: 'the wrong CA to fail' });
    assert.equal(wrong.status().lastError?.code, 'INSITU_TUNNEL_UNAVAILABLE');
    assert.match(wrong.status().lastError?.message ?? '', /certificate/i);
    assert.equal(wrong.status().sessions.length, 0);

    const plain = new TunnelClient({
      platforms: [url.replace('https:', 'http:')],
      credential: credentialFor('agt_plain2', 'prv_tls'),
      handler: echoHandler('p'),
      backoff: { baseMs: 50, maxMs: 200 },
    });
    clients.push(plain.start());
    await waitFor(() => plain.status().lastError, { what: 'plain text to be refused by the client' });
    assert.equal(plain.status().lastError?.code, 'INSITU_CONFIG_INVALID');
    assert.match(plain.status().lastError?.message ?? '', /plain text/);
    assert.equal(tls.sessions().length, 1);
  });
});
