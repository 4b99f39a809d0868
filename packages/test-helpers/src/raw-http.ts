import { connect } from 'node:net';

/** A response read off a raw socket: status, lower-cased headers and the body as text. */
export interface RawHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Send `head` (the request line and headers, without the blank line) as raw bytes over
 * TCP (`port`) or a Unix socket (`path`) with `Connection: close`, and read the answer to
 * the end. For requests no HTTP client would send: bytes a URL may not hold, broken
 * percent-escapes, request lines past the server's limit.
 *
 * @example await rawHttp({ port }, 'GET /api/v1/orgs/%E0%A4%A HTTP/1.1\r\nHost: x')
 */
export function rawHttp(
  target: { port: number; host?: string } | { path: string },
  head: string | Buffer,
  options: { timeoutMs?: number } = {},
): Promise<RawHttpResponse> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? connect(target.path) : connect(target.port, target.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(options.timeoutMs ?? 10_000, () => socket.destroy(new Error('no complete answer in time')));
    socket.once('connect', () =>
      socket.end(
        Buffer.concat([
          Buffer.isBuffer(head) ? head : Buffer.from(head, 'latin1'),
          Buffer.from('\r\nConnection: close\r\n\r\n'),
        ]),
      ),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A server that answers and closes while the request is still being written resets the
    // connection: what it answered before that still counts.
    let failure: Error | undefined;
    socket.once('error', (error) => (failure = error));
    socket.once('close', () => {
      if (chunks.length === 0 && failure) return reject(failure);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const lines = all
        .subarray(0, split >= 0 ? split : all.length)
        .toString('latin1')
        .split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const raw = split >= 0 ? all.subarray(split + 4) : Buffer.alloc(0);
      resolve({
        status,
        headers,
        body: (headers['transfer-encoding'] === 'chunked' ? unchunk(raw) : raw).toString('utf8'),
      });
    });
  });
}

/** The body of a chunked answer, joined (sizes in hex, each chunk followed by CRLF, ending with a 0 chunk). */
function unchunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n', at);
    if (end < 0) break;
    const size = Number.parseInt(raw.subarray(at, end).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(raw.subarray(end + 2, end + 2 + size));
    at = end + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
