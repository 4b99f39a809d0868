import { InsituError } from '@insitu/core';
import { AppRepository, isUniqueViolation, type AppRow, type AppVersionRow } from '@insitu/store';
import { providerNames, requireAppRole, versionOf, visibleApp } from '../apps/access.js';
import { inspectBundle } from '../apps/bundle-intake.js';
import { NameResolver } from '../name-resolver.js';
import { userOf, type App } from '../app.js';
import { canSeeOrg, requireOrgRole } from '../auth/principal.js';
import {
  AppListQuery,
  AppPage,
  AppSchema,
  CreateAppBody,
  FileQuery,
  IdParams,
  ListQuery,
  VersionPage,
  VersionParams,
  VersionSchema,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentApp, presentVersion } from '../presenters.js';
import { Binary } from '../openapi-responses.js';
import { notFound } from '../errors.js';

const BUNDLE_TYPES = [
  'application/x-tar',
  'application/tar',
  'application/gzip',
  'application/x-gzip',
  'application/octet-stream',
];

/** Applications and their versions: create, submit a bundle, read what was submitted. */
export function registerAppRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;

  async function present(application: AppRow, version: AppVersionRow) {
    const approvals = await store.apps.approvalsOf(version.id);
    const datasets = AppRepository.datasetsOf(version);
    const names = await providerNames(store, [
      ...approvals.map((a) => a.provider_id),
      ...datasets.map((d) => d.providerId),
    ]);
    return presentVersion(
      version,
      application,
      approvals.map((row) => ({ row, providerName: names.get(row.provider_id) ?? row.provider_id })),
      datasets.map((d) => ({ ...d, providerName: names.get(d.providerId) ?? d.providerId })),
    );
  }

  app.post(
    '/api/v1/apps',
    {
      config: { errors: [404, 409] },
      schema: {
        tags: ['apps'],
        summary: 'Create an application (developer role)',
        body: CreateAppBody,
        response: { 201: AppSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { orgId, name, description } = request.body;
      requireOrgRole(principal, orgId, ['developer'], {
        active: true,
        notMember: notFound('organisation', orgId),
      });
      try {
        const row = await store.apps.create({
          orgId,
          name,
          description: description ?? '',
          createdBy: principal.userId,
        });
        await store.events.add({ orgId, kind: 'app.created', subject: row.id, message: `application ${name} created` });
        return reply.status(201).send(presentApp(row));
      } catch (error) {
        if (isUniqueViolation(error))
          throw new InsituError('INSITU_CONFLICT', `the organisation has an application named "${name}" already`);
        throw error;
      }
    },
  );

  app.get(
    '/api/v1/apps',
    {
      config: { errors: [404] },
      schema: {
        tags: ['apps'],
        summary: 'Applications of your organisations (platform admins: all)',
        querystring: AppListQuery,
        response: { 200: AppPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { org, name } = request.query;
      if (org !== undefined && name !== undefined) {
        // An application's name is unique in its organisation, and only a name (never an id).
        const row = canSeeOrg(principal, org) ? await store.apps.getByName(org, name) : undefined;
        return { items: row ? [presentApp(row)] : [] };
      }
      if (name !== undefined)
        throw new InsituError('INSITU_VALIDATION', 'name is unique within an organisation: give org as well');
      const page = pageRequest(request.query, { org });
      if (org !== undefined && !canSeeOrg(principal, org)) return { items: [] };
      const orgIds = org !== undefined ? [org] : principal.platformAdmin ? undefined : [...principal.orgs.keys()];
      const rows = await store.apps.list({ ...(orgIds ? { orgIds } : {}), limit: page.limit + 1, offset: page.offset });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map(presentApp) };
    },
  );

  app.get(
    '/api/v1/apps/:id',
    { schema: { tags: ['apps'], summary: 'One application', params: IdParams, response: { 200: AppSchema } } },
    async (request) => presentApp(await visibleApp(store, userOf(request), request.params.id)),
  );

  // Bundles arrive as raw bytes (a tarball, gzipped or not), up to limits.bundleBytes.
  app.register(async (plugin) => {
    const scoped = plugin as unknown as App;
    scoped.addContentTypeParser(
      BUNDLE_TYPES,
      { parseAs: 'buffer', bodyLimit: ctx.config.limits.bundleBytes },
      (_request, body, done) => done(null, body),
    );
    scoped.post(
      '/api/v1/apps/:id/versions',
      {
        bodyLimit: ctx.config.limits.bundleBytes,
        config: { errors: [409] },
        schema: {
          tags: ['apps'],
          summary:
            'Submit a version: the bundle as a tarball (application/x-tar or application/gzip). Providers of every dataset it reads must approve it.',
          params: IdParams,
          response: { 201: VersionSchema },
        },
      },
      async (request, reply) => {
        const principal = userOf(request);
        const application = await visibleApp(store, principal, request.params.id);
        requireAppRole(principal, application, ['developer'], true);
        const body = request.body;
        if (!Buffer.isBuffer(body))
          throw new InsituError(
            'INSITU_UNSUPPORTED_MEDIA_TYPE',
            `send the bundle as ${BUNDLE_TYPES.slice(0, 3).join(', ')}`,
          );
        const bundle = await inspectBundle(body, {
          maxBytes: ctx.config.limits.bundleBytes,
          maxEntries: ctx.config.limits.bundleEntries,
        });
        const { manifest } = bundle;
        if (manifest.name !== application.name) {
          throw new InsituError(
            'INSITU_BUNDLE_INVALID',
            `insitu.json names application "${manifest.name}", but this is "${application.name}"`,
          );
        }
        if (manifest.datasets.length === 0)
          throw new InsituError(
            'INSITU_BUNDLE_INVALID',
            'insitu.json: an application must read at least one dataset (its providers approve it and run it)',
          );
        // Every dataset it reads must exist and be visible to the developer. Entries are
        // resolved to provider ids here, once: those providers approve, and the resolved
        // list is what deployments carry and agents enforce.
        const { resolved, missing } = await new NameResolver(store).manifestDatasets(
          manifest.datasets,
          (dataset) => dataset.visibility === 'public' || canSeeOrg(principal, dataset.orgId),
        );
        if (missing.length > 0)
          throw new InsituError(
            'INSITU_BUNDLE_INVALID',
            `insitu.json reads datasets the catalog does not have: ${missing.join(', ')}`,
            { details: { missing } },
          );
        const major = Number(manifest.version.split('.')[0]);
        const created = await store.transaction(async (tx) => {
          if (await tx.apps.getVersionByNumber(application.id, manifest.version)) {
            throw new InsituError(
              'INSITU_CONFLICT',
              `version ${manifest.version} of ${application.name} exists already; versions are immutable, bump the version`,
            );
          }
          await tx.blobs.put(bundle.canonical);
          const result = await tx.apps.createVersion({
            appId: application.id,
            version: manifest.version,
            major,
            digest: bundle.digest,
            size: bundle.canonical.length,
            manifest,
            files: bundle.files,
            submittedBy: principal.userId,
            datasets: resolved,
          });
          await tx.events.add({
            orgId: application.org_id,
            kind: 'version.submitted',
            subject: result.version.id,
            message: `${application.name} ${manifest.version} submitted (sha256:${bundle.digest.slice(0, 12)}…); waiting for ${result.approvals.length} approval(s)`,
            data: { digest: bundle.digest },
          });
          for (const approval of result.approvals) {
            const provider = await tx.providers.get(approval.provider_id);
            await tx.events.add({
              orgId: provider?.org_id ?? null,
              kind: 'approval.requested',
              subject: approval.id,
              message: `${application.name} ${manifest.version} asks to read your data; review and approve or reject it`,
            });
          }
          return result.version;
        });
        request.log.info(
          { appId: application.id, version: manifest.version, digest: bundle.digest },
          'version submitted',
        );
        return reply.status(201).send(await present(application, created));
      },
    );
  });

  app.get(
    '/api/v1/apps/:id/versions',
    {
      schema: {
        tags: ['apps'],
        summary: 'Versions of an application with their approval state',
        params: IdParams,
        querystring: ListQuery,
        response: { 200: VersionPage },
      },
    },
    async (request) => {
      const application = await visibleApp(store, userOf(request), request.params.id);
      const page = pageRequest(request.query);
      const rows = await store.apps.listVersions(application.id, { limit: page.limit + 1, offset: page.offset });
      const result = pageOf(rows, page);
      return { ...result, items: await Promise.all(result.items.map((row) => present(application, row))) };
    },
  );

  app.get(
    '/api/v1/apps/:id/versions/:versionId',
    {
      schema: {
        tags: ['apps'],
        summary: 'One version: manifest, files, digest, approvals',
        params: VersionParams,
        response: { 200: VersionSchema },
      },
    },
    async (request) => {
      const application = await visibleApp(store, userOf(request), request.params.id);
      return present(application, await versionOf(store, application, request.params.versionId));
    },
  );

  app.get(
    '/api/v1/apps/:id/versions/:versionId/file',
    {
      schema: {
        tags: ['apps'],
        summary: 'The content of one file of a version (the application organisation)',
        params: VersionParams,
        querystring: FileQuery,
        produces: ['application/octet-stream'],
        response: { 200: Binary('application/octet-stream', 'The bytes of the file') },
      },
    },
    async (request, reply) => {
      const application = await visibleApp(store, userOf(request), request.params.id);
      const version = await versionOf(store, application, request.params.versionId);
      const data = await fileOf(version, request.query.path);
      return reply.type('application/octet-stream').send(data);
    },
  );

  /** One file of a stored bundle. */
  async function fileOf(version: AppVersionRow, path: string): Promise<Buffer> {
    const blob = await store.blobs.get(version.digest);
    if (!blob) throw new InsituError('INSITU_INTERNAL', `bundle ${version.digest} is missing`);
    const bundle = await inspectBundle(blob, {
      maxBytes: ctx.config.limits.bundleBytes,
      maxEntries: ctx.config.limits.bundleEntries,
    });
    const entry = bundle.entries.find((e) => e.path === path && e.kind === 'file');
    if (!entry?.data) throw new InsituError('INSITU_NOT_FOUND', `no file ${path} in ${version.version}`);
    return entry.data;
  }
}
