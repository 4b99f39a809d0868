import type { Duplex } from 'node:stream';
import { InsituError, errorJson } from './errors.js';
import { newId } from './ids.js';

/** Whether a socket's remote address is this machine's loopback (IPv4, IPv6 or IPv4-mapped). */
export function isLoopback(address: string | undefined): boolean {
  return address === '::1' || address === '::ffff:127.0.0.1' || (address?.startsWith('127.') ?? false);
}

/** How much of a caller's path an error message repeats (a path may be kilobytes long). */
const ECHO = 80;

/** `text` cut to a length fit for an error message. */
export function echo(text: string): string {
  return text.length > ECHO ? `${text.slice(0, ECHO)}…` : text;
}

/**
 * Decode one percent-encoded path segment, or throw `INSITU_BAD_PATH` (400) when its
 * escapes are malformed (`%A`, `%zz`) or do not decode to UTF-8 (`%FF`). Every edge that
 * reads path segments decodes them with this, so such a path is a coded 400 everywhere
 * instead of a `URIError` that turns into a 500.
 *
 * @example decodePathSegment('caf%C3%A9') // 'café'
 */
export function decodePathSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InsituError(
      'INSITU_BAD_PATH',
      `the path segment ${JSON.stringify(echo(segment))} is not valid percent-encoded UTF-8`,
    );
  }
}

/** Throw `INSITU_BAD_PATH` unless every segment of `path` decodes (see {@link decodePathSegment}). */
export function checkPathEncoding(path: string): void {
  if (!path.includes('%')) return;
  for (const segment of path.split('/')) decodePathSegment(segment);
}

/** What Node's HTTP parser reported, as our error. */
function clientErrorOf(error: Error & { code?: string }): InsituError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new InsituError(
        'INSITU_HEADERS_TOO_LARGE',
        'the request line and headers are larger than this server accepts',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new InsituError('INSITU_REQUEST_TIMEOUT', 'the request did not arrive completely in time');
    case 'HPE_INVALID_URL':
      return new InsituError(
        'INSITU_BAD_PATH',
        'the request target holds characters that a URL may not (send them percent-encoded)',
      );
    default:
      return new InsituError(
        'INSITU_BAD_REQUEST',
        `the request is not well-formed HTTP/1.1 (${error.code ?? 'parse error'})`,
      );
  }
}

/**
 * A `clientError` handler for Node's HTTP servers: a request the parser refuses (bytes a
 * URL may not hold, a request line or headers over the limit, a timeout) is answered in
 * our error shape — `{ error: { code, message, requestId } }` with the code's status and
 * an `insitu-request-id` header — instead of Node's bare status line, and the connection
 * is closed (the parser cannot continue on it).
 *
 * @example server.on('clientError', answerClientError);
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = clientErrorOf(error);
  const requestId = newId('req');
  const body = errorJson(answer, requestId);
  // A response still attached to the socket (a pipelined request failed while an earlier
  // answer is being written) must not be interleaved with ours: close instead, as Node does.
  if (!socket.writable || (socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_TEXT[answer.status] ?? 'Bad Request'}\r\n` +
      'content-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `insitu-request-id: ${requestId}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};
