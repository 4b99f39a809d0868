import { InsituError, type JobOutputPolicy } from '@insitu/core';
import { AppRepository, type ApprovalRow } from '@insitu/store';
import { providersOf, providerNames } from '../apps/access.js';
import { inspectBundle, reviewText } from '../apps/bundle-intake.js';
import { userOf, type App } from '../app.js';
import { canSeeOrg, requireOrgRole, type UserPrincipal } from '../auth/principal.js';
import {
  ApprovalDetailSchema,
  ApprovalListQuery,
  ApprovalPage,
  ApprovalSchema,
  DecideBody,
  IdParams,
  RejectBody,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentApproval } from '../presenters.js';
import { notFound } from '../errors.js';

/**
 * Approval requests: every provider whose dataset a version reads reviews its manifest,
 * files and code, and approves or rejects that exact digest. Providers see requests
 * addressed to them; developers see those of their applications.
 */
export function registerApprovalRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;

  async function context(row: ApprovalRow) {
    const version = await store.apps.getVersion(row.version_id);
    const application = version ? await store.apps.get(version.app_id) : undefined;
    const provider = await store.providers.get(row.provider_id);
    if (!version || !application || !provider) throw notFound('approval', row.id);
    return { version, application, provider };
  }

  /** The approval if the user reviews for its provider or develops its app; 404 otherwise. */
  async function visible(principal: UserPrincipal, id: string) {
    const row = await store.apps.getApproval(id);
    if (!row) throw notFound('approval', id);
    const found = await context(row);
    if (!canSeeOrg(principal, found.provider.org_id) && !canSeeOrg(principal, found.application.org_id)) {
      throw notFound('approval', id);
    }
    return { row, ...found };
  }

  app.get(
    '/api/v1/approvals',
    {
      config: { errors: [404] },
      schema: {
        tags: ['approvals'],
        summary: 'Approval requests addressed to your providers (provider role), or of your versions with ?version=',
        querystring: ApprovalListQuery,
        response: { 200: ApprovalPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { state, provider, version } = request.query;
      const page = pageRequest(request.query, { state, provider, version });
      let providerIds: string[] | undefined;
      if (version) {
        // The developer's view of one version: it must be an app of theirs.
        const row = await store.apps.getVersion(version);
        const application = row ? await store.apps.get(row.app_id) : undefined;
        if (!application || !canSeeOrg(principal, application.org_id)) throw notFound('version', version);
      } else if (provider) {
        const row = await store.providers.get(provider);
        if (!row) throw notFound('provider', provider);
        requireOrgRole(principal, row.org_id, ['provider'], {
          notMember: new InsituError('INSITU_FORBIDDEN', "only the provider's organisation reviews its approvals"),
        });
        providerIds = [provider];
      } else if (!principal.platformAdmin) {
        providerIds = (await providersOf(store, principal)).map((p) => p.id);
      }
      const rows = await store.apps.listApprovals({
        ...(providerIds ? { providerIds } : {}),
        ...(state ? { state } : {}),
        ...(version ? { versionId: version } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      const names = await providerNames(
        store,
        result.items.map((r) => r.provider_id),
      );
      const items = [];
      for (const row of result.items) {
        const { version: v, application } = await context(row);
        items.push(presentApproval(row, v, application, names.get(row.provider_id) ?? row.provider_id));
      }
      return { ...result, items };
    },
  );

  app.get(
    '/api/v1/approvals/:id',
    {
      schema: {
        tags: ['approvals'],
        summary: 'One approval request with everything to review: manifest, file list, and the text of every text file',
        params: IdParams,
        response: { 200: ApprovalDetailSchema },
      },
    },
    async (request) => {
      const { row, version, application, provider } = await visible(userOf(request), request.params.id);
      const blob = await store.blobs.get(version.digest);
      if (!blob) throw new InsituError('INSITU_INTERNAL', `bundle ${version.digest} is missing`);
      const bundle = await inspectBundle(blob, {
        maxBytes: ctx.config.limits.bundleBytes,
        maxEntries: ctx.config.limits.bundleEntries,
      });
      const texts = new Map(
        bundle.entries
          .filter((e) => e.kind === 'file' && e.data)
          .map((e) => [e.path, reviewText(e.data ?? Buffer.alloc(0))]),
      );
      const files = bundle.files.map((f) => {
        const text = texts.get(f.path);
        return text === undefined ? f : { ...f, text };
      });
      const datasets = AppRepository.datasetsOf(version)
        .filter((d) => d.providerId === row.provider_id)
        .map((d) => d.dataset);
      return {
        ...presentApproval(row, version, application, provider.name),
        manifest: JSON.parse(version.manifest) as unknown,
        datasets,
        files,
      };
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/api/v1/approvals/:id/${decision}`,
      {
        config: { errors: [409] },
        schema: {
          tags: ['approvals'],
          summary:
            decision === 'approve'
              ? 'Approve this exact digest to run next to your data (provider role)'
              : 'Reject, with a reason the developer sees (provider role)',
          params: IdParams,
          body: decision === 'approve' ? DecideBody : RejectBody,
          response: { 200: ApprovalSchema },
        },
      },
      async (request) => {
        const principal = userOf(request);
        const { row, version, application, provider } = await visible(principal, request.params.id);
        requireOrgRole(principal, provider.org_id, ['provider'], {
          active: true,
          notMember: new InsituError('INSITU_FORBIDDEN', `only ${provider.name} decides this approval`),
        });
        const reason = (request.body as { reason?: string }).reason ?? '';
        const jobPolicy =
          decision === 'approve' ? (request.body as { jobPolicy?: JobOutputPolicy }).jobPolicy : undefined;
        const versionState = await store.transaction(async (tx) => {
          const state = await tx.apps.decide(row.id, {
            state: decision === 'approve' ? 'approved' : 'rejected',
            reason,
            userId: principal.userId,
            ...(jobPolicy ? { jobPolicy } : {}),
          });
          if (state === undefined) throw new InsituError('INSITU_CONFLICT', `this approval was ${row.state} already`);
          await tx.events.add({
            orgId: application.org_id,
            kind: `approval.${decision === 'approve' ? 'approved' : 'rejected'}`,
            subject: version.id,
            message: `${provider.name} ${decision === 'approve' ? 'approved' : 'rejected'} ${application.name} ${version.version}${reason ? `: ${reason}` : ''}`,
          });
          if (state !== 'pending') {
            await tx.events.add({
              orgId: application.org_id,
              kind: `version.${state}`,
              subject: version.id,
              message: `${application.name} ${version.version} is ${state}`,
            });
          }
          return state;
        });
        request.log.info({ approvalId: row.id, decision, versionState }, 'approval decided');
        const updated = await store.apps.getApproval(row.id);
        return presentApproval(updated ?? row, version, application, provider.name);
      },
    );
  }
}
