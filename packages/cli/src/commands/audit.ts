import { createLogger } from '@insitu/core';
import { openStore } from '@insitu/store';
import {
  anchorSettings,
  coordinatorFor,
  storeConfigFor,
  verifyAuditLog,
  type AuditLogVerification,
} from '@insitu/server';
import { ApiClient, type RemoteOptions } from '../api-client.js';
import { dataDirOf, loadCliServerConfig, requireExistingDatabase } from '../data-dir.js';
import { line, type CliIo } from '../io.js';

/**
 * `insitu audit verify`: walk every record of the audit log's hash chain and compare it
 * with the newest signed anchor kept outside the database (the anchor file in the data
 * dir, and etcd when the config names it). With `--url`, through the API (platform admin
 * token); otherwise straight on the data dir's database, with the data dir's anchor key,
 * which needs no running server. Exit 1 when it is broken.
 */
export async function runAuditVerify(options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<number> {
  let result: AuditLogVerification;
  if (options.url ?? io.env.INSITU_URL) {
    result = await ApiClient.from(options, io).request<AuditLogVerification>('POST', '/api/v1/audit/verify');
  } else {
    const dataDir = dataDirOf(options, io);
    const config = loadCliServerConfig(options, io, dataDir, {});
    const storeConfig = storeConfigFor(config, dataDir);
    // A missing database is a wrong --data-dir, not an empty log: opening it would create one and report "intact".
    requireExistingDatabase(storeConfig, dataDir);
    const store = await openStore(storeConfig, { migrate: false });
    const coordinator =
      config.cluster.coordination === 'etcd'
        ? coordinatorFor(config, { logger: createLogger({ name: 'audit', level: 'warn' }) })
        : undefined;
    try {
      const settings = await anchorSettings(config, dataDir, {
        ...(coordinator ? { coordinator } : {}),
        create: false,
      });
      result = settings
        ? await verifyAuditLog(store, { places: settings.places, trusted: settings.trusted })
        : { ...(await store.audit.verify()), anchored: false };
    } finally {
      await coordinator?.close();
      await store.close();
    }
  }
  if (options.json) line(io.stdout, JSON.stringify(result));
  else if (result.ok) {
    line(
      io.stdout,
      `audit log verified: ${result.records} records, chain intact${result.head ? ` (head ${result.head.seq}, sha256 ${result.head.hash.slice(0, 16)}…)` : ''}`,
    );
    line(
      io.stdout,
      result.anchor
        ? `signed anchor: record ${result.anchor.seq} at ${result.anchor.ts} (key ${result.anchor.keyId}, from ${result.anchor.source}) matches`
        : 'no signed anchor found outside the database: only the chain itself was checked',
    );
  } else
    line(
      io.stdout,
      `audit log BROKEN at record ${result.firstBroken?.seq}: ${result.firstBroken?.reason} (${result.records} records read)`,
    );
  return result.ok ? 0 : 1;
}
