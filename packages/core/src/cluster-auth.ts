import { createHmac } from 'node:crypto';
import { safeEqual } from './secrets.js';

/** The header that carries {@link signClusterRequest}'s token. */
export const CLUSTER_AUTH_HEADER = 'insitu-cluster-auth';

function mac(secret: string, node: string, ms: number, method: string, path: string): string {
  return createHmac('sha256', secret)
    .update(`insitu-cluster/1\n${node}\n${ms}\n${method.toUpperCase()} ${path}`)
    .digest('base64url');
}

/**
 * A token proving that a request comes from a node of the platform cluster (the operator
 * calling a server's cluster endpoints): `<node>.<unix ms>.<HMAC-SHA256 over node, time,
 * method and path>` with the cluster secret. The secret never crosses the wire; a token is
 * good for one method and path, for ±5 minutes.
 */
export function signClusterRequest(
  secret: string,
  node: string,
  method: string,
  path: string,
  now = Date.now(),
): string {
  return `${node}.${now}.${mac(secret, node, now, method, path)}`;
}

/** The node that signed `token` for this method and path, or undefined when it is not valid (wrong secret, stale, malformed). */
export function verifyClusterRequest(
  secret: string,
  token: string | undefined,
  method: string,
  path: string,
  now = Date.now(),
  skewMs = 300_000,
): string | undefined {
  if (!token || token.length > 512) return undefined;
  const match = /^([A-Za-z0-9._-]{1,100})\.(\d{10,16})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return undefined;
  const [, node = '', msText = '', signature = ''] = match;
  const ms = Number(msText);
  if (Math.abs(now - ms) > skewMs) return undefined;
  return safeEqual(signature, mac(secret, node, ms, method, path)) ? node : undefined;
}
