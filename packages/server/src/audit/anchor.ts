import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { InsituError } from '@insitu/core';
import type { AuditHead } from '@insitu/store';

/**
 * A head of the audit chain signed with the platform's anchor key (Ed25519), a key the
 * database does not hold. Published outside the database (coord, a file, the log), it lets
 * `insitu audit verify` notice a chain that was rewritten consistently (hashes and head
 * recomputed), truncated or emptied by someone who can write the database.
 */
export interface SignedAnchor {
  v: 1;
  /** The anchored record's sequence number (0: the chain was empty) and hash. */
  seq: number;
  hash: string;
  /** When it was signed (ISO 8601). */
  ts: string;
  /** The node that signed it. */
  node: string;
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER). */
  keyId: string;
  /** Base64 Ed25519 signature over {@link anchorPayload}. */
  signature: string;
}

/** The anchor key: the private half stays in its file; the public half is published. */
export interface AnchorKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

/** The identifier of a public key: first 16 hex digits of the SHA-256 of its SPKI DER. */
export function anchorKeyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

function keyOf(privateKey: KeyObject): AnchorKey {
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: anchorKeyId(publicKey),
  };
}

/** The public key file written beside the private one. */
export function publicKeyFileOf(keyFile: string): string {
  return `${keyFile}.pub`;
}

/** Read the anchor key from `file` (PKCS#8 PEM); undefined when the file does not exist. */
export async function readAnchorKey(file: string): Promise<AnchorKey | undefined> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      `cannot read the audit anchor key ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const key = keyOf(createPrivateKey(pem));
    if (key.privateKey.asymmetricKeyType !== 'ed25519')
      throw new Error(`a ${key.privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
    return key;
  } catch (error) {
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      `the audit anchor key ${file} is not an Ed25519 private key: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * The anchor key in `file`, created (Ed25519, mode 0600, its public half in `<file>.pub`)
 * when there is none. `insitu init` creates it; a server finding none creates one too.
 */
export async function ensureAnchorKey(file: string): Promise<{ key: AnchorKey; created: boolean }> {
  const existing = await readAnchorKey(file);
  if (existing) return { key: existing, created: false };
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return ensureAnchorKey(file);
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      `cannot create the audit anchor key ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  await chmod(file, 0o600);
  const key = keyOf(privateKey);
  await writeFile(publicKeyFileOf(file), key.publicKeyPem, { mode: 0o644 });
  return { key, created: true };
}

/** The bytes an anchor's signature covers. */
export function anchorPayload(anchor: Pick<SignedAnchor, 'seq' | 'hash' | 'ts' | 'node' | 'keyId'>): Buffer {
  return Buffer.from(
    JSON.stringify(['insitu-audit-anchor/1', anchor.seq, anchor.hash, anchor.ts, anchor.node, anchor.keyId]),
  );
}

/** Sign `head` as seen by `node` at `now`. */
export function signAnchor(key: AnchorKey, head: AuditHead, node: string, now: number): SignedAnchor {
  const unsigned = {
    v: 1 as const,
    seq: head.seq,
    hash: head.hash,
    ts: new Date(now).toISOString(),
    node,
    keyId: key.keyId,
  };
  return { ...unsigned, signature: sign(null, anchorPayload(unsigned), key.privateKey).toString('base64') };
}

/** Public keys trusted to sign anchors, by key id. */
export type TrustedAnchorKeys = ReadonlyMap<string, KeyObject>;

/** Trust `keys` (KeyObjects or SPKI PEM strings). */
export function trustedAnchorKeys(keys: ReadonlyArray<KeyObject | string>): TrustedAnchorKeys {
  const out = new Map<string, KeyObject>();
  for (const key of keys) {
    let publicKey: KeyObject;
    try {
      publicKey = typeof key === 'string' ? createPublicKey(key) : key;
    } catch (error) {
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        `audit.trustedAnchorKeys holds something that is not a public key: ${(error as Error).message}`,
        { cause: error },
      );
    }
    out.set(anchorKeyId(publicKey), publicKey);
  }
  return out;
}

/** The anchor in `raw` (JSON text) if it is well formed and signed by a trusted key; else why not. */
export function checkAnchor(
  raw: string,
  trusted: TrustedAnchorKeys,
): { ok: true; anchor: SignedAnchor } | { ok: false; untrusted?: true; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'is not JSON' };
  }
  const a = value as Partial<SignedAnchor> | null;
  if (
    !a ||
    typeof a !== 'object' ||
    a.v !== 1 ||
    !Number.isSafeInteger(a.seq) ||
    (a.seq ?? -1) < 0 ||
    typeof a.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(a.hash) ||
    typeof a.ts !== 'string' ||
    typeof a.node !== 'string' ||
    typeof a.keyId !== 'string' ||
    typeof a.signature !== 'string'
  ) {
    return { ok: false, reason: 'is not a signed anchor' };
  }
  const anchor = a as SignedAnchor;
  const publicKey = trusted.get(anchor.keyId);
  if (!publicKey)
    return {
      ok: false,
      untrusted: true,
      reason: `is signed by key ${anchor.keyId}, which this platform does not trust`,
    };
  if (!verify(null, anchorPayload(anchor), publicKey, Buffer.from(anchor.signature, 'base64')))
    return { ok: false, reason: 'has a signature that does not verify (it was altered)' };
  return { ok: true, anchor };
}
