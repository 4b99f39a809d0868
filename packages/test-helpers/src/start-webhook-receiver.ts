import { createServer, type IncomingHttpHeaders } from 'node:http';

/** One request received by {@link startWebhookReceiver}. */
export interface ReceivedHook {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or the text when it is not JSON. */
  body: unknown;
  /** The status it was answered with. */
  status: number;
}

/** A real HTTP server on a free loopback port that records every request. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:PORT/hook` */
  readonly url: string;
  /** Every request, including those answered with an error status. */
  readonly received: readonly ReceivedHook[];
  /** Requests answered 2xx. */
  readonly accepted: readonly ReceivedHook[];
  /** Answer the next `count` requests with `status` (default 503), then 204 again. */
  failNext(count: number, status?: number): void;
  stop(): Promise<void>;
}

/**
 * Start an HTTP server that accepts webhook POSTs (answering 204) and keeps them, for
 * testing code that delivers webhooks with a real HTTP client.
 *
 * @example
 * const hook = await startWebhookReceiver();
 * await waitFor(() => hook.accepted.length > 0);
 */
/** `host`: the address to listen on (default loopback; the test bed uses its bridge address). */
export async function startWebhookReceiver(options: { host?: string } = {}): Promise<WebhookReceiver> {
  const host = options.host ?? '127.0.0.1';
  const received: ReceivedHook[] = [];
  let failures = { count: 0, status: 503 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // kept as text
      }
      let status = 204;
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 };
        status = failures.status;
      }
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, status });
      res.writeHead(status, { connection: 'close' }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('webhook receiver has no TCP address');
  let stopped = false;
  return {
    url: `http://${host}:${address.port}/hook`,
    received,
    get accepted() {
      return received.filter((hook) => hook.status < 300);
    },
    failNext(count: number, status = 503) {
      failures = { count, status };
    },
    stop: () => {
      if (stopped) return Promise.resolve();
      stopped = true;
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
