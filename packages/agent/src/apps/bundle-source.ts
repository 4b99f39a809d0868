import { isAbsolute, resolve } from 'node:path';
import type { ResolvedDataset } from '@insitu/core';
import { bundleInvalid } from '../errors.js';

/** A deployment the platform wants this agent to run. */
export interface DesiredDeployment {
  /** Stable id of the deployment (the platform's). */
  id: string;
  app: string;
  version: string;
  /** The approved sha256 of the bundle's canonical tarball (hex, or `sha256:hex`). */
  digest: string;
  replicas: number;
  /** Where the bundle comes from, as the {@link BundleSource} understands it (a path, a platform bundle id…). */
  bundle: string;
  /**
   * The datasets the application may read, resolved to provider ids by the platform at
   * submission and approved: the agent serves those of its own provider and nothing else.
   * Absent means none (only `provider: '*'`, for `insitu app dev`, reads the manifest).
   */
  datasets?: readonly ResolvedDataset[];
}

/** A fetched bundle: a local directory or tarball, and how to clean it up afterwards. */
export interface FetchedBundle {
  path: string;
  dispose?: () => Promise<void>;
}

/**
 * Where bundles come from. The agent verifies whatever a source returns against the
 * approved digest before it starts anything, so a source need not be trusted.
 */
export interface BundleSource {
  fetch(deployment: DesiredDeployment, signal: AbortSignal): Promise<FetchedBundle>;
}

/** Bundles that are already on this machine: `bundle` is a directory or tarball path. */
export class LocalBundleSource implements BundleSource {
  constructor(private readonly baseDir: string = process.cwd()) {}

  async fetch(deployment: DesiredDeployment): Promise<FetchedBundle> {
    if (!deployment.bundle) throw bundleInvalid(`deployment ${deployment.id} names no bundle`);
    return { path: isAbsolute(deployment.bundle) ? deployment.bundle : resolve(this.baseDir, deployment.bundle) };
  }
}
