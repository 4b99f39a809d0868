import { isAbsolute, join } from 'node:path';
import type { Logger } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import type { Store } from '@insitu/store';
import type { ServerConfig } from '../config.js';
import { ensureAnchorKey, readAnchorKey, trustedAnchorKeys, type AnchorKey, type TrustedAnchorKeys } from './anchor.js';
import type { AnchorPlaces } from './anchor-places.js';
import { AuditAnchorPublisher } from './anchor-publisher.js';

/** A server's audit anchoring: its key, the keys it trusts, where anchors go, and the publisher. */
export interface AuditAnchoring {
  key: AnchorKey;
  trusted: TrustedAnchorKeys;
  places: AnchorPlaces;
  publisher: AuditAnchorPublisher;
}

/** `file` resolved against the data dir; undefined when it is relative and there is none. */
export function dataDirFile(file: string, dataDir: string | undefined): string | undefined {
  if (isAbsolute(file)) return file;
  return dataDir ? join(dataDir, file) : undefined;
}

/**
 * The anchor key and file of `config.audit`, the trusted keys and places (for the server
 * and `insitu audit verify`). With `create`, a missing key file is created; without, a
 * missing key leaves only `audit.trustedAnchorKeys` trusted. Undefined when the key file
 * is relative and there is no data dir.
 */
export async function anchorSettings(
  config: Readonly<ServerConfig>,
  dataDir: string | undefined,
  options: { coordinator?: Coordinator; create: boolean },
): Promise<
  { key: AnchorKey | undefined; created: boolean; trusted: TrustedAnchorKeys; places: AnchorPlaces } | undefined
> {
  const keyFile = dataDirFile(config.audit.anchorKeyFile, dataDir);
  if (!keyFile) return undefined;
  const { key, created } = options.create
    ? await ensureAnchorKey(keyFile)
    : { key: await readAnchorKey(keyFile), created: false };
  const file = dataDirFile(config.audit.anchorFile, dataDir);
  return {
    key,
    created,
    trusted: trustedAnchorKeys([...(key ? [key.publicKey] : []), ...config.audit.trustedAnchorKeys]),
    places: { ...(options.coordinator ? { coord: options.coordinator } : {}), ...(file ? { file } : {}) },
  };
}

/** Load (or create) the anchor key and make the publisher; undefined without a key file. */
export async function setUpAuditAnchoring(options: {
  config: Readonly<ServerConfig>;
  store: Store;
  logger: Logger;
  node: string;
  now: () => number;
  coordinator: Coordinator;
  dataDir?: string;
}): Promise<AuditAnchoring | undefined> {
  const settings = await anchorSettings(options.config, options.dataDir, {
    coordinator: options.coordinator,
    create: true,
  });
  if (!settings?.key) {
    options.logger.warn(
      'no data dir and a relative audit.anchorKeyFile: audit chain heads are not signed or anchored outside the database',
    );
    return undefined;
  }
  if (settings.created)
    options.logger.warn(
      { keyId: settings.key.keyId },
      'created a new audit anchor key; anchors signed by any former key no longer verify unless it is listed in audit.trustedAnchorKeys',
    );
  const publisher = new AuditAnchorPublisher({
    repos: options.store,
    key: settings.key,
    places: settings.places,
    logger: options.logger,
    node: options.node,
    intervalMs: options.config.audit.anchorIntervalMs,
    now: options.now,
  });
  return { key: settings.key, trusted: settings.trusted, places: settings.places, publisher };
}
