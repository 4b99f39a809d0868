import { hash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * A new bearer secret `isu_<kind>_<43 url-safe characters>` (256 random bits). The
 * kind makes a leaked secret recognisable in logs and secret scanners.
 *
 * @example generateSecret('ses')
 */
export function generateSecret(kind: string): string {
  return `isu_${kind}_${randomBytes(32).toString('base64url')}`;
}

/**
 * SHA-256 of a high-entropy secret (tokens, credentials, keys), hex. Such secrets need
 * no slow KDF: guessing 256 random bits is hopeless; the hash only protects a leaked table.
 * One-shot `crypto.hash` (Node ≥ 20.12): a fifth of a `createHash` object's cost, and the
 * gateway hashes every call's key (issue 12).
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** Cost of the password KDF (scrypt). Tests may lower it; production keeps the default. */
export interface PasswordKdfCost {
  /** CPU/memory cost, a power of two (default 2^15). */
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_PASSWORD_COST: PasswordKdfCost = { N: 1 << 15, r: 8, p: 1 };

function scryptAsync(password: string, salt: Buffer, cost: PasswordKdfCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

/**
 * Hash a password with scrypt and a random salt. The result carries its parameters:
 * `scrypt$N$r$p$salt$hash` (base64url), so the cost can rise without breaking old hashes.
 */
export async function hashPassword(password: string, cost: PasswordKdfCost = DEFAULT_PASSWORD_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Check a password against {@link hashPassword}'s output in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltText, keyText] = parts;
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  if (![cost.N, cost.r, cost.p].every((v) => Number.isInteger(v) && v > 0)) return false;
  const expected = Buffer.from(keyText ?? '', 'base64url');
  const actual = await scryptAsync(password, Buffer.from(saltText ?? '', 'base64url'), cost);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Constant-time comparison of two hex digests or short strings. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
