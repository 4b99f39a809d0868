import { request } from 'node:http';

/** Status and body of an HTTP response. */
export interface HttpResponse {
  status: number;
  body: string;
}

/**
 * One HTTP request without keep-alive (a server we are about to kill must not hold a
 * pooled socket); the body is always read to the end.
 */
export function httpRequest(
  url: string,
  options: { method?: string; body?: string; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: false,
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: options.timeoutMs ?? 2000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('error', reject);
        res.once('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`${url} did not answer within ${options.timeoutMs ?? 2000} ms`)));
    req.once('error', reject);
    req.end(options.body);
  });
}
