import type { AuditHead, AuditVerification, Repositories } from '@insitu/store';
import { checkAnchor, type SignedAnchor, type TrustedAnchorKeys } from './anchor.js';
import { readAnchorTexts, type AnchorPlaces } from './anchor-places.js';

/** {@link AuditVerification} plus what the signed anchors said. */
export interface AuditLogVerification extends AuditVerification {
  /** The newest signed anchor found outside the database, and where. */
  anchor?: { seq: number; hash: string; ts: string; keyId: string; source: string };
  /** False when no place held an anchor: only the chain itself was checked. */
  anchored: boolean;
  /** Anchors in coord signed by keys this node does not trust (other nodes' keys): not evidence either way. */
  ignored?: string[];
}

/**
 * Verify the audit log against itself (every record, in order, from 1 to the head) and
 * against the signed anchors kept outside the database: each anchor must be signed by a
 * trusted key, and the record it names must still carry its hash. An anchor that does not
 * verify is itself a failure: someone wrote where only the platform writes.
 */
export async function verifyAuditLog(
  repos: Repositories,
  options: { places: AnchorPlaces; trusted: TrustedAnchorKeys },
): Promise<AuditLogVerification> {
  const anchors: Array<SignedAnchor & { source: string }> = [];
  const ignored: string[] = [];
  for (const { source, at, text } of await readAnchorTexts(options.places)) {
    const checked = checkAnchor(text, options.trusted);
    if (!checked.ok && checked.untrusted && source === 'coord') {
      // Another node's key (a cluster whose nodes keep their own keys): its anchors prove
      // nothing here, and a forgery under an unknown key cannot pass for ours either.
      ignored.push(at);
      continue;
    }
    if (!checked.ok) {
      // Our own anchor file is written only with our key: anything else there is tampering.
      const head = await repos.audit.head();
      return {
        ok: false,
        records: 0,
        firstBroken: { seq: 0, reason: `the audit anchor in ${source} ${checked.reason}` },
        anchored: true,
        ...(head ? { head } : {}),
      };
    }
    anchors.push({ ...checked.anchor, source });
  }
  const heads: AuditHead[] = anchors.map((a) => ({ seq: a.seq, hash: a.hash }));
  const result = await repos.audit.verify({ anchors: heads });
  const newest = anchors.reduce<(SignedAnchor & { source: string }) | undefined>(
    (best, a) => (!best || a.seq > best.seq ? a : best),
    undefined,
  );
  return {
    ...result,
    anchored: newest !== undefined,
    ...(ignored.length > 0 ? { ignored } : {}),
    ...(newest
      ? { anchor: { seq: newest.seq, hash: newest.hash, ts: newest.ts, keyId: newest.keyId, source: newest.source } }
      : {}),
  };
}
