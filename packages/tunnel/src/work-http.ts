import { maxHeaderSize } from 'node:http';
import { InsituError } from '@insitu/core';

/**
 * The HTTP/1.1 the platform speaks over a work connection: a request head written in one
 * piece, and an incremental parser of the application's answer (status line, headers,
 * body framed by `content-length`, `chunked` or the connection's close). Node's
 * `http.ClientRequest` and `Agent` did this before; per request they cost more than the
 * rest of the platform's share of the hop (bench/RESULTS.md, bench/callpath). Anything the
 * parser cannot read safely is an `INSITU_TUNNEL_UPSTREAM_FAILED` error, never a guess.
 */

/** The longest status line + headers (or trailers) accepted: Node's own limit (16 KiB by default). */
export const MAX_ANSWER_HEAD_BYTES = maxHeaderSize;
/** The longest chunk-size line (size and extensions). */
const MAX_CHUNK_LINE_BYTES = 4096;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const DIGITS = /^\d{1,15}$/;
/** Methods whose request has no body unless one is given (Node sends no `content-length: 0` for them). */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
/** Duplicates of these are dropped, as Node's `IncomingMessage` does (the first one counts). */
const SINGLE_VALUED = new Set([
  'age',
  'authorization',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** Common header names as applications spell them, lower-cased ahead (no `toLowerCase` per header). */
const KNOWN_NAMES = new Map<string, string>();
for (const name of [
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'date',
  'server',
  'cache-control',
  'etag',
  'last-modified',
  'location',
  'set-cookie',
  'vary',
  'x-powered-by',
  'access-control-allow-origin',
]) {
  KNOWN_NAMES.set(name, name);
  KNOWN_NAMES.set(
    name.replace(/(^|-)[a-z]/g, (first) => first.toUpperCase()),
    name,
  );
}

function malformed(what: string): InsituError {
  return new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', `the application's answer is malformed: ${what}`);
}

/** How a request's body goes on the wire. */
export type RequestFraming = 'none' | 'length' | 'chunked';

/**
 * The request head (with the binding line of a fresh connection in front of it when
 * given). Throws `INSITU_VALIDATION` for a method, path, header name or value that would
 * break the message (what Node's `http.request` refuses).
 */
export function encodeRequestHead(
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  body: 'given' | 'stream' | 'none',
): { head: string; framing: RequestFraming } {
  if (!TOKEN.test(method)) throw new InsituError('INSITU_VALIDATION', `the request cannot be sent: bad method`);
  if (path.length === 0 || BAD_PATH.test(path))
    throw new InsituError(
      'INSITU_VALIDATION',
      'the request cannot be sent: the path has characters that must be escaped',
    );
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasLength = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (!TOKEN.test(name))
      throw new InsituError('INSITU_VALIDATION', `the request cannot be sent: bad header name "${name.slice(0, 100)}"`);
    if (name === 'content-length') hasLength = true;
    if (typeof value === 'string') {
      if (BAD_VALUE.test(value))
        throw new InsituError('INSITU_VALIDATION', `the request cannot be sent: bad value of header "${name}"`);
      head += `${name}: ${value}\r\n`;
    } else {
      for (const one of value) {
        if (BAD_VALUE.test(one))
          throw new InsituError('INSITU_VALIDATION', `the request cannot be sent: bad value of header "${name}"`);
        head += `${name}: ${one}\r\n`;
      }
    }
  }
  let framing: RequestFraming = 'none';
  if (hasLength) framing = body === 'none' ? 'none' : 'length';
  else if (body === 'stream') {
    framing = 'chunked';
    head += 'transfer-encoding: chunked\r\n';
  } else if (body === 'none' && !BODYLESS_METHODS.has(method)) head += 'content-length: 0\r\n';
  return { head: `${head}\r\n`, framing };
}

/** The parsed head of an answer. */
export interface AnswerHead {
  status: number;
  /** Lower-case names; `set-cookie` always an array, other repeated headers joined with `, `. */
  headers: Record<string, string | string[]>;
}

/** Where the parser's results go. */
export interface AnswerSink {
  onHead(head: AnswerHead): void;
  onBody(chunk: Buffer): void;
  /** The answer is complete; `reusable`: the connection may carry another request. */
  onComplete(reusable: boolean): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

/** An incremental parser of one answer; `execute` throws the errors described above. */
export class AnswerParser {
  #state = State.Head;
  #pending: Buffer | undefined;
  #left = 0;
  #trailerBytes = 0;
  #keepAlive = true;
  /** Milliseconds the application keeps an idle connection (its `Keep-Alive: timeout=N` hint), if it said. */
  keepAliveMs: number | undefined;

  constructor(
    readonly sink: AnswerSink,
    /** The request was HEAD: no body whatever the headers say. */
    readonly headRequest: boolean,
  ) {}

  /** True once the answer is complete. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** True once the head of the (final) answer was read. */
  get started(): boolean {
    return this.#state !== State.Head;
  }

  /** Feed bytes read from the connection. */
  execute(chunk: Buffer): void {
    let data = chunk;
    if (this.#pending !== undefined) {
      data = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    let at = 0;
    while (at < data.length) {
      switch (this.#state) {
        case State.Head: {
          const end = data.indexOf('\r\n\r\n', at, 'latin1');
          if (end < 0) {
            if (data.length - at > MAX_ANSWER_HEAD_BYTES) throw malformed('the head is too large');
            this.#pending = data.subarray(at);
            return;
          }
          if (end - at > MAX_ANSWER_HEAD_BYTES) throw malformed('the head is too large');
          const head = data.toString('latin1', at, end);
          at = end + 4;
          this.#head(head);
          // No body (HEAD, 204, 304, `content-length: 0`): complete now.
          if (this.done) this.#complete(at < data.length);
          break;
        }
        case State.Length: {
          const n = Math.min(this.#left, data.length - at);
          this.#left -= n;
          const piece = data.subarray(at, at + n);
          at += n;
          if (this.#left === 0) this.#finish();
          this.sink.onBody(piece);
          if (this.done) this.#complete(at < data.length);
          break;
        }
        case State.UntilClose:
          this.sink.onBody(at === 0 ? data : data.subarray(at));
          return;
        case State.ChunkSize:
        case State.Trailers: {
          const end = data.indexOf('\r\n', at, 'latin1');
          const limit = this.#state === State.ChunkSize ? MAX_CHUNK_LINE_BYTES : MAX_ANSWER_HEAD_BYTES;
          if (end < 0) {
            if (data.length - at > limit) throw malformed('a chunk-size line or the trailers are too long');
            this.#pending = data.subarray(at);
            return;
          }
          const line = data.toString('latin1', at, end);
          at = end + 2;
          if (this.#state === State.ChunkSize) {
            const match = CHUNK_SIZE.exec(line);
            if (!match) throw malformed('a bad chunk size');
            this.#left = Number.parseInt(match[1] ?? '', 16);
            this.#state = this.#left === 0 ? State.Trailers : State.ChunkData;
          } else if (line.length === 0) {
            this.#finish();
            this.#complete(at < data.length);
          } else {
            this.#trailerBytes += line.length + 2;
            if (this.#trailerBytes > MAX_ANSWER_HEAD_BYTES) throw malformed('the trailers are too long');
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#left, data.length - at);
          this.#left -= n;
          const piece = data.subarray(at, at + n);
          at += n;
          if (this.#left === 0) this.#state = State.ChunkDataEnd;
          this.sink.onBody(piece);
          break;
        }
        case State.ChunkDataEnd: {
          if (data.length - at < 2) {
            if (data[at] !== 13) throw malformed('a chunk not followed by CRLF');
            this.#pending = data.subarray(at);
            return;
          }
          if (data[at] !== 13 || data[at + 1] !== 10) throw malformed('a chunk not followed by CRLF');
          at += 2;
          this.#state = State.ChunkSize;
          break;
        }
        case State.Done:
          // Bytes after a complete answer, unasked for: the connection is not reused.
          this.#keepAlive = false;
          return;
      }
    }
  }

  /**
   * The connection was closed cleanly by the other side (FIN). Returns true when that
   * completes the answer (no framing but the close, or nothing was due); false when the
   * answer is cut short.
   */
  end(): boolean {
    if (this.#state === State.UntilClose) {
      this.#finish();
      this.#complete(false);
      return true;
    }
    return this.#state === State.Done;
  }

  #head(text: string): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const statusLine = STATUS_LINE.exec(text.slice(0, eol));
    if (!statusLine) throw malformed('a bad status line');
    const minor = statusLine[1];
    const status = Number(statusLine[2]);
    const headers: Record<string, string | string[]> = {};
    // Line by line without splitting the head (`text` ends before the blank line).
    for (let at = eol + 2; at < text.length; at = eol + 2) {
      eol = text.indexOf('\r\n', at);
      if (eol < 0) eol = text.length;
      const colon = text.indexOf(':', at);
      if (colon <= at || colon > eol) throw malformed('a header line without a name');
      const name = text.slice(at, colon);
      let key = KNOWN_NAMES.get(name);
      if (key === undefined) {
        if (!TOKEN.test(name)) throw malformed(`a bad header name`);
        key = name.toLowerCase();
      }
      const value = trimOws(text.slice(colon + 1, eol));
      if (BAD_VALUE.test(value)) throw malformed(`a bad value of header ${name.slice(0, 100)}`);
      const seen = headers[key];
      if (key === 'set-cookie') {
        if (seen === undefined) headers[key] = [value];
        else (seen as string[]).push(value);
      } else if (seen === undefined) headers[key] = value;
      else if (key === 'content-length') {
        if (seen !== value) throw malformed('two different content-length values');
      } else if (!SINGLE_VALUED.has(key)) headers[key] = `${seen as string}, ${value}`;
    }
    if (status < 200) {
      // 100 Continue, 103 Early Hints…: informational, the final answer follows.
      if (status === 101) throw malformed('101 Switching Protocols, which was not asked for');
      return;
    }
    const connection = (headers.connection as string | undefined)?.toLowerCase();
    this.#keepAlive = minor === '1' ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
    const hint = /(?:^|[\s,])timeout=(\d{1,6})/.exec((headers['keep-alive'] as string | undefined) ?? '');
    if (hint) this.keepAliveMs = Number(hint[1]) * 1000;
    const te = headers['transfer-encoding'] as string | undefined;
    const length = headers['content-length'] as string | undefined;
    if (te !== undefined && length !== undefined) throw malformed('both content-length and transfer-encoding');
    if (length !== undefined && !DIGITS.test(length)) throw malformed('a bad content-length');
    this.sink.onHead({ status, headers });
    if (this.headRequest || status === 204 || status === 304) this.#finish();
    else if (te !== undefined) {
      if (/(?:^|,)[\t ]*chunked[\t ]*$/i.test(te)) this.#state = State.ChunkSize;
      else {
        // A coding other than chunked last: the body runs to the close (RFC 9112 §6.3).
        this.#keepAlive = false;
        this.#state = State.UntilClose;
      }
    } else if (length !== undefined) {
      this.#left = Number(length);
      this.#state = this.#left === 0 ? State.Done : State.Length;
    } else {
      this.#keepAlive = false;
      this.#state = State.UntilClose;
    }
  }

  #finish(): void {
    this.#state = State.Done;
  }

  #complete(extraBytes: boolean): void {
    if (extraBytes) this.#keepAlive = false;
    this.sink.onComplete(this.#keepAlive);
  }
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 32 || value.charCodeAt(start) === 9)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  if (list === token) return true;
  return list.split(',').some((part) => part.trim() === token);
}
