import { randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** Prefixes of our ids; the prefix says what an id names. */
export type IdPrefix =
  'org' | 'usr' | 'ses' | 'prv' | 'enr' | 'agt' | 'ds' | 'req' | 'evt' | (string & { readonly __idPrefix?: never });

let lastTime = 0;
let lastRandom: Uint8Array = new Uint8Array(10);

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD.charAt(t % 32) + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 10 bytes = 80 bits = 16 base32 characters
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD.charAt((buffer >> bits) & 31);
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

function increment(bytes: Uint8Array): Uint8Array {
  const next = Uint8Array.from(bytes);
  for (let i = next.length - 1; i >= 0; i--) {
    const value = (next[i] ?? 0) + 1;
    next[i] = value & 0xff;
    if (value <= 0xff) break;
  }
  return next;
}

// Random bytes drawn from a pool refilled 4 KB at a time: one call to the CSPRNG per
// ~400 ids instead of one per id (it showed in the gateway's profile: an id per call).
const pool = Buffer.alloc(4090);
let poolOffset = pool.length;

function freshRandom(): Uint8Array {
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = Uint8Array.from(pool.subarray(poolOffset, poolOffset + 10));
  poolOffset += 10;
  return out;
}

/**
 * A new id `prefix_` + 26 characters: 48 bits of time and 80 random bits (ULID layout,
 * lower-case Crockford base32). Ids made later in one process sort after earlier ones,
 * so they double as a stable order for pagination.
 *
 * @example newId('ds') // 'ds_01jf3q4v8p0000000000000000'
 */
export function newId(prefix: IdPrefix): string {
  const now = Date.now();
  if (now <= lastTime) {
    lastRandom = increment(lastRandom);
  } else {
    lastTime = now;
    lastRandom = freshRandom();
  }
  return `${prefix}_${encodeTime(lastTime)}${encodeRandom(lastRandom)}`;
}

const ID_PATTERN = /^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` has the shape of an id with this prefix. */
export function isId(value: unknown, prefix?: IdPrefix): value is string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) return false;
  return prefix === undefined || value.startsWith(`${prefix}_`);
}
