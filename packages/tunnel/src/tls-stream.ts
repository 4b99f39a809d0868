import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

/**
 * The stream to run HTTP/2 on. A TLS socket that came out of an HTTP/1.1 upgrade is
 * wrapped in a plain Duplex: Node 20's native HTTP/2 session on such a socket aborts the
 * process (`Assertion failed: is_write_in_progress()` in node_http2.cc). Plain TCP
 * sockets are used as they are.
 */
export function http2Transport(socket: Socket): Duplex {
  if (!(socket as TLSSocket).encrypted) return socket;
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.on('error', (error) => duplex.destroy(error));
  return duplex;
}
