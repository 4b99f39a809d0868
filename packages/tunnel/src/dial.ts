import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { InsituError } from '@insitu/core';

/** How to dial a platform node and upgrade the connection. */
export interface DialOptions {
  /** Base URL of the node: `https://host:port` (or `http://` when plain text is allowed). */
  url: string;
  path: string;
  protocol: string;
  headers: Record<string, string>;
  /** PEM of the platform CA to pin (the only CA trusted for https). */
  ca?: string | Buffer;
  /** Dial `http://` URLs; without it they are refused. */
  allowPlainText: boolean;
  timeoutMs: number;
}

/** An upgraded connection and the headers of the `101`. */
export interface Dialled {
  socket: Socket;
  headers: http.IncomingHttpHeaders;
}

/**
 * Open a connection to `url`, send the HTTP/1.1 upgrade request and resolve with the
 * raw socket after `101`. Anything else is an `InsituError`: a `401` is
 * `INSITU_TUNNEL_CREDENTIAL_REJECTED`, other answers and network failures
 * `INSITU_TUNNEL_UNAVAILABLE`.
 */
export function dialUpgrade(options: DialOptions): Promise<Dialled> {
  let target: URL;
  try {
    target = new URL(options.path, options.url);
  } catch (error) {
    return Promise.reject(new InsituError('INSITU_CONFIG_INVALID', `"${options.url}" is not a URL`, { cause: error }));
  }
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') {
    return Promise.reject(
      new InsituError(
        'INSITU_CONFIG_INVALID',
        `platform URL ${options.url} must be https:// (or http:// with plain text allowed)`,
      ),
    );
  }
  if (!secure && !options.allowPlainText) {
    return Promise.reject(
      new InsituError(
        'INSITU_CONFIG_INVALID',
        `refusing to dial ${options.url} in plain text: use https://, or allow plain text explicitly on both sides`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || (secure ? 443 : 80),
      path: target.pathname + target.search,
      agent: false,
      headers: { ...options.headers, connection: 'Upgrade', upgrade: options.protocol },
      timeout: options.timeoutMs,
    };
    if (secure) {
      const host = target.hostname.replace(/^\[|\]$/g, '');
      // SNI carries names only (RFC 6066); an IP address is checked against the certificate's IP SANs.
      if (!isIP(host)) requestOptions.servername = host;
      if (options.ca !== undefined) requestOptions.ca = options.ca;
    }
    const request = (secure ? https : http).request(requestOptions);
    let settled = false;
    const fail = (error: InsituError): void => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(error);
    };
    request.on('upgrade', (response, socket, head) => {
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      socket.setTimeout(0);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      if (head.length > 0) socket.unshift(head);
      resolve({ socket, headers: response.headers });
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 16 * 1024) chunks.push(chunk);
      });
      response.on('error', () => undefined);
      response.on('end', () => {
        let code = '';
        let message = '';
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            error?: { code?: string; message?: string };
          };
          code = body.error?.code ?? '';
          message = body.error?.message ?? '';
        } catch {
          // not our JSON error body
        }
        const status = response.statusCode ?? 0;
        const details = { status, code };
        if (status === 401 || status === 403) {
          fail(
            new InsituError(
              'INSITU_TUNNEL_CREDENTIAL_REJECTED',
              `${options.url} refused the credential (${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''})`,
              { details },
            ),
          );
        } else {
          fail(
            new InsituError(
              'INSITU_TUNNEL_UNAVAILABLE',
              `${options.url} answered ${status}${code ? ` ${code}` : ''} instead of upgrading${message ? `: ${message}` : ''}`,
              { details },
            ),
          );
        }
      });
    });
    request.on('timeout', () =>
      fail(
        new InsituError(
          'INSITU_TUNNEL_UNAVAILABLE',
          `${options.url} did not answer the upgrade within ${options.timeoutMs} ms`,
        ),
      ),
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      fail(
        new InsituError(
          'INSITU_TUNNEL_UNAVAILABLE',
          `cannot reach ${options.url}: ${error.code ?? ''} ${error.message}`.trim(),
          { cause: error },
        ),
      );
    });
    request.end();
  });
}
