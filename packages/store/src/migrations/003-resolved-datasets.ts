import { hasIdShape, newId, type ResolvedDataset } from '@insitu/core';
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** The tables this migration reads and writes, as they were when it shipped. */
interface Tables {
  app_versions: { id: string; manifest: string; datasets: string | null };
  approvals: { version_id: string; provider_id: string };
  providers: { id: string; org_id: string; name: string; updated_at: number };
  orgs: { id: string; name: string; updated_at: number };
  events: {
    id: string;
    ts: number;
    org_id: string | null;
    kind: string;
    subject: string;
    message: string;
    data: string;
  };
}

/**
 * Names resolve to ids once, at submission, and only ids travel on from there.
 *
 * 1. `app_versions.datasets`: the manifest's dataset entries resolved to provider ids. For
 *    versions submitted before this column existed it is filled with what their
 *    submission resolved — provider by name first, then by id, the rule of that time, so
 *    each entry keeps the provider that was asked to approve it — and an entry is kept
 *    only if that provider holds an approval of the version. A version approved under
 *    the old rule thus lets agents serve exactly what each provider approved, even when
 *    a manifest entry names one provider's id and another provider's name was that id.
 * 2. Organisation and provider names with the shape of an id (only a name chosen to
 *    impersonate an id has it) are renamed `renamed-<the row's own id suffix>`, with an
 *    event telling the organisation. Other legacy names that contain `_` stay valid.
 */
export function resolvedDatasets(dialect: Dialect) {
  const text = dialect === 'mysql' ? sql.raw('mediumtext') : sql.raw('text');
  return {
    async up(untyped: Kysely<unknown>): Promise<void> {
      const db = untyped as unknown as Kysely<Tables>;
      await untyped.schema.alterTable('app_versions').addColumn('datasets', text).execute();

      const versions = await db.selectFrom('app_versions').select(['id', 'manifest']).execute();
      for (const version of versions) {
        const approvers = new Set(
          (await db.selectFrom('approvals').select('provider_id').where('version_id', '=', version.id).execute()).map(
            (a) => a.provider_id,
          ),
        );
        const resolved: ResolvedDataset[] = [];
        for (const ref of manifestRefs(version.manifest)) {
          const provider =
            (await db.selectFrom('providers').select('id').where('name', '=', ref.provider).executeTakeFirst()) ??
            (await db.selectFrom('providers').select('id').where('id', '=', ref.provider).executeTakeFirst());
          if (provider && approvers.has(provider.id)) resolved.push({ providerId: provider.id, dataset: ref.dataset });
        }
        await db
          .updateTable('app_versions')
          .set({ datasets: JSON.stringify(resolved) })
          .where('id', '=', version.id)
          .execute();
      }

      const now = Date.now();
      const renamed: Array<{ table: 'providers' | 'orgs'; id: string; orgId: string; from: string }> = [
        ...(await db.selectFrom('providers').select(['id', 'org_id', 'name']).execute()).map((r) => ({
          table: 'providers' as const,
          id: r.id,
          orgId: r.org_id,
          from: r.name,
        })),
        ...(await db.selectFrom('orgs').select(['id', 'name']).execute()).map((r) => ({
          table: 'orgs' as const,
          id: r.id,
          orgId: r.id,
          from: r.name,
        })),
      ].filter((r) => hasIdShape(r.from));
      for (const row of renamed) {
        const to = `renamed-${row.id.slice(row.id.indexOf('_') + 1)}`;
        await db.updateTable(row.table).set({ name: to, updated_at: now }).where('id', '=', row.id).execute();
        const what = row.table === 'providers' ? 'provider' : 'organisation';
        await db
          .insertInto('events')
          .values({
            id: newId('evt'),
            ts: now,
            org_id: row.orgId,
            kind: row.table === 'providers' ? 'provider.renamed' : 'org.renamed',
            subject: row.id,
            message: `${what} "${row.from}" was renamed "${to}": a name may not have the shape of an id`,
            data: JSON.stringify({ from: row.from, to }),
          })
          .execute();
      }
    },
  };
}

/** The dataset entries of a stored manifest (stored manifests passed validation; stay defensive anyway). */
function manifestRefs(manifest: string): Array<{ provider: string; dataset: string }> {
  try {
    const parsed = JSON.parse(manifest) as { datasets?: unknown };
    if (!Array.isArray(parsed.datasets)) return [];
    return parsed.datasets.filter(
      (d): d is { provider: string; dataset: string } =>
        typeof d === 'object' &&
        d !== null &&
        typeof (d as { provider?: unknown }).provider === 'string' &&
        typeof (d as { dataset?: unknown }).dataset === 'string',
    );
  } catch {
    return [];
  }
}
