/**
 * @insitu/server — the control plane: the REST API under `/api/v1` with its OpenAPI
 * document, health, readiness and metrics. Later it also hosts the gateway and the
 * tunnel endpoint.
 *
 * Build it with {@link buildServer} (tests use `inject()`), or open the database and
 * listen with {@link startServer}.
 */
export { buildServer } from './build-server.js';
export type { BuildServerOptions, PlatformParts } from './build-server.js';
export type { ServiceDispatcher, DispatchRequest, DispatchResult, DispatchTarget } from './gateway/dispatcher.js';
export { NO_DISPATCHER } from './gateway/dispatcher.js';
export type { AgentDeployment } from '@insitu/core';
export { desiredFor } from './apps/desired-state.js';
export { compareSemver } from './apps/semver.js';
export { inspectBundle } from './apps/bundle-intake.js';
export { startServer, storeConfigFor } from './start-server.js';
export { coordinatorFor } from './tunnel-endpoint.js';
export type { RunningServer } from './start-server.js';
export { ServerConfigSchema, loadServerConfig, defaultServerConfig } from './config.js';
export type { ServerConfig } from './config.js';
export { initPlatform, signIn, issueSession, createOrg, createUser } from './accounts.js';
export type { PlatformInit, IssuedSession } from './accounts.js';
export type { App } from './app.js';
export type { Principal, UserPrincipal, AgentPrincipal } from './auth/principal.js';
export { VERSION } from './version.js';
export { anchorSettings } from './audit/anchoring.js';
export type { AuditAnchoring } from './audit/anchoring.js';
export { verifyAuditLog } from './audit/verify-audit-log.js';
export type { AuditLogVerification } from './audit/verify-audit-log.js';
export { ensureAnchorKey, checkAnchor, signAnchor, trustedAnchorKeys, publicKeyFileOf } from './audit/anchor.js';
export type { SignedAnchor, AnchorKey } from './audit/anchor.js';
export { ANCHOR_COORD_PREFIX } from './audit/anchor-places.js';
