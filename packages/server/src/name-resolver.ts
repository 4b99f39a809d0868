import { refKind, type AppDatasetRef, type ResolvedDataset } from '@insitu/core';
import type { DatasetRecord, ProviderRow, Repositories, ServiceRow } from '@insitu/store';

/** A manifest's dataset entries, resolved: what providers approve and agents enforce. */
export interface ResolvedManifestDatasets {
  resolved: ResolvedDataset[];
  /** Entries that name no provider, or a dataset the provider does not have or the caller may not see (`provider/dataset` as written). */
  missing: string[];
}

/**
 * The one place where a reference someone wrote — a provider or service given as id or
 * name — becomes a row. It applies core's {@link refKind} rule: an id-shaped reference is
 * looked up by id only, anything else by name only, so a name can never capture an id.
 * Everything after this point carries ids.
 *
 * @example
 * const provider = await new NameResolver(store).provider('acme-data'); // by name only
 */
export class NameResolver {
  constructor(private readonly repos: Repositories) {}

  /** The provider `ref` (id or name) refers to. */
  async provider(ref: string): Promise<ProviderRow | undefined> {
    switch (refKind(ref, 'prv')) {
      case 'id':
        return this.repos.providers.get(ref);
      case 'name':
        return this.repos.providers.getByName(ref);
      default:
        return undefined;
    }
  }

  /** The service `ref` (id or name) refers to. */
  async service(ref: string): Promise<ServiceRow | undefined> {
    switch (refKind(ref, 'svc')) {
      case 'id':
        return this.repos.services.get(ref);
      case 'name':
        return this.repos.services.getByName(ref);
      default:
        return undefined;
    }
  }

  /**
   * Resolve a manifest's dataset entries, once, at submission: each entry's provider (by
   * the rule above) and the dataset of that name at that provider, which `visible` must
   * allow the submitter to see. The result lists provider ids only.
   */
  async manifestDatasets(
    refs: readonly AppDatasetRef[],
    visible: (dataset: DatasetRecord) => boolean,
  ): Promise<ResolvedManifestDatasets> {
    const resolved: ResolvedDataset[] = [];
    const missing: string[] = [];
    for (const ref of refs) {
      const provider = await this.provider(ref.provider);
      const dataset = provider ? await this.repos.datasets.getByName(provider.id, ref.dataset) : undefined;
      if (!provider || !dataset || !visible(dataset)) missing.push(`${ref.provider}/${ref.dataset}`);
      else if (!resolved.some((r) => r.providerId === provider.id && r.dataset === dataset.name))
        resolved.push({ providerId: provider.id, dataset: dataset.name });
    }
    return { resolved, missing };
  }
}
