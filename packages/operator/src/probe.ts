import { connect } from 'node:net';

/** The outcome of one probe. */
export interface ProbeResult {
  ok: boolean;
  /** Epoch ms when it finished. */
  at: number;
  ms: number;
  /** HTTP status, when it got one. */
  status?: number;
  error?: string;
}

/** GET `url`: a 2xx answer within `timeoutMs` passes. The body is read (and dropped) so the connection is freed. */
export async function httpProbe(url: string, timeoutMs: number): Promise<ProbeResult> {
  const started = Date.now();
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'user-agent': 'insitu-operator' },
    });
    await response.arrayBuffer().catch(() => undefined);
    const at = Date.now();
    return response.ok
      ? { ok: true, at, ms: at - started, status: response.status }
      : { ok: false, at, ms: at - started, status: response.status, error: `answered ${response.status}` };
  } catch (error) {
    const at = Date.now();
    const cause = (error as Error & { cause?: { code?: string } }).cause;
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : (cause?.code ?? (error as Error).message);
    return { ok: false, at, ms: at - started, error: reason };
  }
}

/** Open a TCP connection to `host:port` within `timeoutMs` (for services without an HTTP probe, e.g. mariadbd). */
export function tcpProbe(address: string, timeoutMs: number): Promise<ProbeResult> {
  const started = Date.now();
  const split = address.lastIndexOf(':');
  const host = address.slice(0, split);
  const port = Number(address.slice(split + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      const at = Date.now();
      resolve(error === undefined ? { ok: true, at, ms: at - started } : { ok: false, at, ms: at - started, error });
    };
    const timer = setTimeout(() => done(`no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done());
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}
