import { openStore, type AuditVerification } from '@insitu/store';
import { storeConfigFor } from '@insitu/server';
import { ApiClient, type RemoteOptions } from '../api-client.js';
import { dataDirOf, loadCliServerConfig, requireExistingDatabase } from '../data-dir.js';
import { line, type CliIo } from '../io.js';

/**
 * `insitu audit verify`: walk the audit log's hash chain. With `--url`, through the API
 * (platform admin token); otherwise straight on the data dir's database, which needs no
 * running server and trusts nothing but the records themselves. Exit 1 when it is broken.
 */
export async function runAuditVerify(options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<number> {
  let result: AuditVerification;
  if (options.url ?? io.env.INSITU_URL) {
    result = await ApiClient.from(options, io).request<AuditVerification>('POST', '/api/v1/audit/verify');
  } else {
    const dataDir = dataDirOf(options, io);
    const config = loadCliServerConfig(options, io, dataDir, {});
    const storeConfig = storeConfigFor(config, dataDir);
    // A missing database is a wrong --data-dir, not an empty log: opening it would create one and report "intact".
    requireExistingDatabase(storeConfig, dataDir);
    const store = await openStore(storeConfig, { migrate: false });
    try {
      result = await store.audit.verify();
    } finally {
      await store.close();
    }
  }
  if (options.json) line(io.stdout, JSON.stringify(result));
  else if (result.ok) line(io.stdout, `audit log verified: ${result.records} records, chain intact${result.head ? ` (head ${result.head.seq}, sha256 ${result.head.hash.slice(0, 16)}…)` : ''}`);
  else line(io.stdout, `audit log BROKEN at record ${result.firstBroken?.seq}: ${result.firstBroken?.reason} (${result.records} records read)`);
  return result.ok ? 0 : 1;
}
