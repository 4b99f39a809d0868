import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { InsituError, assertValid } from '@insitu/core';
import type { TSchema, Static } from 'typebox';
import { MAX_CONTROL_FRAME_BYTES } from './protocol.js';

/**
 * Read newline-delimited JSON frames from `stream`, each validated against `schema`.
 * A line longer than {@link MAX_CONTROL_FRAME_BYTES}, bad JSON or a frame that does not
 * match calls `onBad` once with an `INSITU_TUNNEL_BAD_FRAME` error and stops reading.
 */
export function readFrames<S extends TSchema>(
  stream: Readable,
  schema: S,
  what: string,
  onFrame: (frame: Static<S>) => void,
  onBad: (error: InsituError) => void,
): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let failed = false;
  const fail = (error: InsituError): void => {
    if (failed) return;
    failed = true;
    stream.removeListener('data', onData);
    onBad(error);
  };
  const onData = (chunk: Buffer): void => {
    pending += decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0 && !failed) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          fail(new InsituError('INSITU_TUNNEL_BAD_FRAME', `${what}: a frame is not JSON`));
          return;
        }
        let frame: Static<S>;
        try {
          frame = assertValid(schema, parsed, { what, code: 'INSITU_TUNNEL_BAD_FRAME' });
        } catch (error) {
          fail(error as InsituError);
          return;
        }
        onFrame(frame);
      }
      newline = pending.indexOf('\n');
    }
    if (Buffer.byteLength(pending) > MAX_CONTROL_FRAME_BYTES) {
      fail(new InsituError('INSITU_TUNNEL_BAD_FRAME', `${what}: a frame exceeds ${MAX_CONTROL_FRAME_BYTES} bytes`));
    }
  };
  stream.on('data', onData);
}

/** One frame as a JSON line. */
export function encodeFrame(frame: unknown): string {
  return `${JSON.stringify(frame)}\n`;
}
