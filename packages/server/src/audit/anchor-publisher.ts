import type { Logger } from '@insitu/core';
import type { AuditHead, Repositories } from '@insitu/store';
import { checkAnchor, signAnchor, trustedAnchorKeys, type AnchorKey, type SignedAnchor } from './anchor.js';
import { putCoordAnchor, readAnchorTexts, writeAnchorFile, type AnchorPlaces } from './anchor-places.js';

/** Options of {@link AuditAnchorPublisher}. */
export interface AnchorPublisherOptions {
  repos: Repositories;
  key: AnchorKey;
  places: AnchorPlaces;
  logger: Logger;
  node: string;
  intervalMs: number;
  now: () => number;
}

/**
 * Signs the audit chain's head every `intervalMs` (when it moved) and on shutdown, and
 * publishes the signed anchor to the coordination store, the anchor file and the log
 * stream (a line `audit head anchored` with the anchor under `auditAnchor`).
 *
 * Before signing it checks that the chain still extends the last anchor it knows (the
 * anchored record keeps its hash and every later record links on): it never vouches for
 * a rewritten log. A break is logged as INSITU_AUDIT_BROKEN and nothing is signed.
 */
export class AuditAnchorPublisher {
  private timer: NodeJS.Timeout | undefined;
  private last: AuditHead | undefined;
  private loaded = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: AnchorPublisherOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.publish().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  /** The newest anchor this publisher signed, if any. */
  latest: SignedAnchor | undefined;

  /**
   * Sign and publish the head if it moved since the last anchor (always with `force`).
   * Runs one at a time; resolves with the anchor published, if any.
   */
  publish(options: { force?: boolean; places?: AnchorPlaces } = {}): Promise<SignedAnchor | undefined> {
    const run = this.chain.then(() => this.publishNow(options));
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Stop the timer and publish a last anchor to the places given (shutdown). */
  async close(places?: AnchorPlaces): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.publish({ ...(places ? { places } : {}) }).catch(() => undefined);
  }

  private async publishNow(options: { force?: boolean; places?: AnchorPlaces }): Promise<SignedAnchor | undefined> {
    const { repos, key, logger } = this.options;
    const places = options.places ?? this.options.places;
    if (!this.loaded) {
      this.last = await this.newestKnownAnchor();
      this.loaded = true;
    }
    const extended = await repos.audit.extend(this.last);
    if (!extended.ok) {
      logger.error(
        { code: 'INSITU_AUDIT_BROKEN', firstBroken: extended.firstBroken, anchor: this.last },
        'the audit log no longer extends its last signed anchor; not signing it',
      );
      return undefined;
    }
    const head = extended.head;
    if (!options.force && this.latest && this.latest.seq === head.seq && this.latest.hash === head.hash)
      return undefined;
    const anchor = signAnchor(key, head, this.options.node, this.options.now());
    const failures: string[] = [];
    if (places.coord)
      await putCoordAnchor(places.coord, anchor).catch((error: unknown) =>
        failures.push(`coord: ${(error as Error).message}`),
      );
    if (places.file)
      await writeAnchorFile(places.file, anchor).catch((error: unknown) =>
        failures.push(`file: ${(error as Error).message}`),
      );
    // The log stream is a place too: shipped off the machine, it keeps every anchor.
    logger.info({ auditAnchor: anchor }, 'audit head anchored');
    if (failures.length > 0) logger.warn({ failures }, 'an audit anchor could not be stored everywhere');
    this.last = head;
    this.latest = anchor;
    return anchor;
  }

  /** The newest anchor signed with our key that the places hold (where to continue after a restart). */
  private async newestKnownAnchor(): Promise<AuditHead | undefined> {
    const trusted = trustedAnchorKeys([this.options.key.publicKey]);
    let newest: AuditHead | undefined;
    const texts = await readAnchorTexts(this.options.places).catch((error: unknown) => {
      this.options.logger.warn({ err: error }, 'reading the last audit anchor failed');
      return [];
    });
    for (const { text } of texts) {
      const checked = checkAnchor(text, trusted);
      if (checked.ok && (!newest || checked.anchor.seq > newest.seq))
        newest = { seq: checked.anchor.seq, hash: checked.anchor.hash };
    }
    return newest;
  }
}
