/**
 * @insitu/server — the control plane: the REST API under `/api/v1` with its OpenAPI
 * document, health, readiness and metrics. Later it also hosts the gateway and the
 * tunnel endpoint.
 *
 * Build it with {@link buildServer} (tests use `inject()`), or open the database and
 * listen with {@link startServer}.
 */
export { buildServer } from './build-server.js';
export type { BuildServerOptions } from './build-server.js';
export { startServer, storeConfigFor } from './start-server.js';
export type { RunningServer } from './start-server.js';
export { ServerConfigSchema, loadServerConfig, defaultServerConfig } from './config.js';
export type { ServerConfig } from './config.js';
export { initPlatform, signIn, issueSession, createOrg, createUser } from './accounts.js';
export type { PlatformInit, IssuedSession } from './accounts.js';
export type { App } from './app.js';
export type { Principal, UserPrincipal, AgentPrincipal } from './auth/principal.js';
export { VERSION } from './version.js';
