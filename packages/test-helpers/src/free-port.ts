import { createServer } from 'node:net';

/**
 * Ports handed out recently by this process. The OS may return a port that was
 * just released, and two servers started concurrently would then race for it.
 */
const recentlyGiven = new Set<number>();
const RECENT_LIMIT = 256;

function listenOnEphemeralPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error(`could not read the port of a listener on ${host}`));
      });
    });
  });
}

/**
 * Find a TCP port that is free on `host` right now: listen on port 0, read the
 * port the OS chose, close. Never returns the same port twice in one process.
 *
 * @example
 * const port = await freePort(); // e.g. 41873, free on 127.0.0.1
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await listenOnEphemeralPort(host);
    if (recentlyGiven.has(port)) continue;
    recentlyGiven.add(port);
    if (recentlyGiven.size > RECENT_LIMIT) {
      const oldest = recentlyGiven.values().next();
      if (oldest.done !== true) recentlyGiven.delete(oldest.value);
    }
    return port;
  }
  throw new Error(`could not find a free port on ${host} that this process has not handed out already`);
}
