import { InsituError } from '@insitu/core';
import { DAY_MS, HOUR_MS, latencyQuantile } from '@insitu/store';
import { userOf, type App } from '../app.js';
import { canSeeOrg, requirePlatformAdmin } from '../auth/principal.js';
import {
  AnchorKeySchema,
  AuditPage,
  AuditQuery,
  AuditVerificationSchema,
  EventPage,
  EventQuery,
  JobUsageQuery,
  JobUsageSchema,
  UsageQuery,
  UsageSchema,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import type { AuditAnchoring } from '../audit/anchoring.js';
import { verifyAuditLog } from '../audit/verify-audit-log.js';
import type { CallRecorder } from '../gateway/call-recorder.js';
import { iso, presentAudit, presentEvent } from '../presenters.js';
import { NameResolver } from '../name-resolver.js';
import { serviceForRecords, serviceNotFound } from '../services/access.js';
import { notFound } from '../errors.js';

/** Usage (metering), the audit log and its verification, and the event log. */
export function registerRecordRoutes(
  app: App,
  ctx: ServerContext,
  recorder: CallRecorder,
  anchoring: AuditAnchoring | undefined,
): void {
  const { store } = ctx;

  /** Provider ids of the user's organisations (their audit records and the services that run there). */
  async function providerIdsOf(orgIds: readonly string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const orgId of orgIds)
      ids.push(...(await store.providers.list({ orgId, limit: 1000, offset: 0 })).map((p) => p.id));
    return ids;
  }

  app.get(
    '/api/v1/usage',
    {
      config: { errors: [404] },
      schema: {
        tags: ['usage'],
        summary:
          'Calls, errors, bytes and duration per hour or day: of one service you own (?service=), of one of your keys (?key=), or of all your keys',
        querystring: UsageQuery,
        response: { 200: UsageSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { granularity = 'day', from, to, service, key, groupBy } = request.query;
      const size = granularity === 'hour' ? HOUR_MS : DAY_MS;
      const end = to ? Date.parse(to) : ctx.now() + size;
      const start = from ? Date.parse(from) : end - 30 * DAY_MS;
      if (end <= start) throw new InsituError('INSITU_VALIDATION', '"from" must be before "to"');
      if ((end - start) / size > 24 * 366)
        throw new InsituError('INSITU_VALIDATION', 'too many periods: narrow the range or use granularity=day');
      let serviceIds: string[] | undefined;
      let keyIds: string[] | undefined;
      if (service) {
        // Usage is the owner's: any other service answers exactly like an unknown name.
        const row = await new NameResolver(store).service(service);
        if (!row || !canSeeOrg(principal, row.org_id)) throw serviceNotFound(service);
        serviceIds = [row.id];
      }
      if (key) {
        const row = await store.services.getKey(key);
        if (!row || !canSeeOrg(principal, row.org_id)) throw notFound('API key', key);
        keyIds = [key];
      }
      if (!service && !key && !principal.platformAdmin) {
        keyIds = (await store.services.listKeys({ orgIds: [...principal.orgs.keys()], limit: 10_000, offset: 0 })).map(
          (k) => k.id,
        );
      }
      // Records still in the recorder's queue count too: a caller sees its last call.
      await recorder.flush();
      const totals = await store.usage.totals({
        from: start - (start % HOUR_MS),
        to: end,
        granularity,
        ...(serviceIds ? { serviceIds } : {}),
        ...(keyIds ? { keyIds } : {}),
        ...(groupBy ? { groupBy } : {}),
      });
      return {
        items: totals.map((t) => {
          const p50 = latencyQuantile(t.latency, 0.5);
          const p99 = latencyQuantile(t.latency, 0.99);
          return {
            period: iso(t.period),
            ...(t.keyId ? { keyId: t.keyId } : {}),
            ...(t.serviceId ? { serviceId: t.serviceId } : {}),
            calls: t.calls,
            errors: t.errors,
            bytesIn: t.bytesIn,
            bytesOut: t.bytesOut,
            avgDurationMs: t.calls > 0 ? Math.round((t.durationMs / t.calls) * 100) / 100 : 0,
            ...(p50 !== undefined ? { p50Ms: p50 } : {}),
            ...(p99 !== undefined ? { p99Ms: p99 } : {}),
          };
        }),
      };
    },
  );

  app.get(
    '/api/v1/usage/jobs',
    {
      schema: {
        tags: ['usage'],
        summary:
          'Compute jobs metered per hour or day: runs by outcome, wall and CPU time, result files and bytes; of the jobs your organisations submitted and the jobs run at your providers (?groupBy=org|provider|version, ?version=)',
        querystring: JobUsageQuery,
        response: { 200: JobUsageSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { granularity = 'day', from, to, version, groupBy } = request.query;
      const size = granularity === 'hour' ? HOUR_MS : DAY_MS;
      const end = to ? Date.parse(to) : ctx.now() + size;
      const start = from ? Date.parse(from) : end - 30 * DAY_MS;
      if (end <= start) throw new InsituError('INSITU_VALIDATION', '"from" must be before "to"');
      if ((end - start) / size > 24 * 366)
        throw new InsituError('INSITU_VALIDATION', 'too many periods: narrow the range or use granularity=day');
      const orgIds = [...principal.orgs.keys()];
      const totals = await store.jobUsage.totals({
        from: start - (start % HOUR_MS),
        to: end,
        granularity,
        // The submitter's and the provider's: a job is both organisations' business.
        ...(principal.platformAdmin ? {} : { orgIds, providerIds: await providerIdsOf(orgIds) }),
        ...(version ? { versionId: version } : {}),
        ...(groupBy ? { groupBy } : {}),
      });
      return {
        items: totals.map((t) => ({
          period: iso(t.period),
          ...(t.orgId ? { orgId: t.orgId } : {}),
          ...(t.providerId ? { providerId: t.providerId } : {}),
          ...(t.versionId ? { versionId: t.versionId } : {}),
          runs: t.runs,
          succeeded: t.succeeded,
          failed: t.failed,
          refused: t.refused,
          cancelled: t.cancelled,
          wallTimeMs: t.wallMs,
          cpuTimeMs: t.cpuMs,
          cpuMeasuredRuns: t.cpuRuns,
          resultFiles: t.resultFiles,
          resultBytes: t.resultBytes,
          argsBytes: t.argsBytes,
        })),
      };
    },
  );

  app.get(
    '/api/v1/audit',
    {
      config: { errors: [404] },
      schema: {
        tags: ['audit'],
        summary:
          'Audit records (caller, service, version, agent, status, bytes, duration; never payloads) of calls your organisations made, own the service of, or ran at their providers',
        querystring: AuditQuery,
        response: { 200: AuditPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { service, before, limit = 100 } = request.query;
      const orgIds = [...principal.orgs.keys()];
      const providerIds = await providerIdsOf(orgIds);
      // A service the user may not see answers exactly like an unknown name (no existence oracle).
      const serviceId = service
        ? (await serviceForRecords(store, principal, service, new Set(providerIds))).id
        : undefined;
      await recorder.flush();
      const rows = await store.audit.list({
        ...(principal.platformAdmin ? {} : { callerOrgIds: orgIds, serviceOrgIds: orgIds, providerIds }),
        ...(serviceId ? { serviceId } : {}),
        ...(before !== undefined ? { beforeSeq: before } : {}),
        limit: limit + 1,
      });
      const items = rows.slice(0, limit).map(presentAudit);
      const last = items.at(-1);
      return rows.length > limit && last ? { items, nextBefore: last.seq } : { items };
    },
  );

  app.post(
    '/api/v1/audit/verify',
    {
      schema: {
        tags: ['audit'],
        summary:
          'Walk every record of the hash chain and compare it with the newest signed anchor kept outside the database; report the first edited, deleted, forged or reordered record, or a rewritten, truncated or emptied log (platform admins)',
        response: { 200: AuditVerificationSchema },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      await recorder.flush();
      if (!anchoring) return { ...(await store.audit.verify()), anchored: false };
      return verifyAuditLog(store, { places: anchoring.places, trusted: anchoring.trusted });
    },
  );

  app.get(
    '/api/v1/audit/anchor-key',
    {
      config: { auth: 'public', errors: [404] },
      schema: {
        tags: ['audit'],
        summary:
          'The public key that verifies signed audit anchors (published so that anyone holding an anchor can check it)',
        response: { 200: AnchorKeySchema },
      },
    },
    async () => {
      if (!anchoring)
        throw new InsituError('INSITU_NOT_FOUND', 'this server signs no audit anchors (no anchor key configured)');
      return { keyId: anchoring.key.keyId, publicKey: anchoring.key.publicKeyPem };
    },
  );

  app.get(
    '/api/v1/events',
    {
      schema: {
        tags: ['events'],
        summary:
          "What happened in your organisations (platform admins: also platform-wide events such as the operator's, kinds operator.*), newest first",
        querystring: EventQuery,
        response: { 200: EventPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { subject, kind, before, limit = 50 } = request.query;
      const rows = await store.events.list({
        ...(principal.platformAdmin ? {} : { orgIds: [...principal.orgs.keys()] }),
        ...(subject ? { subject } : {}),
        ...(kind ? { kind } : {}),
        ...(before !== undefined ? { beforeSeq: before } : {}),
        limit: limit + 1,
      });
      const items = rows.slice(0, limit).map(presentEvent);
      const last = items.at(-1);
      return rows.length > limit && last ? { items, nextBefore: last.seq } : { items };
    },
  );
}
