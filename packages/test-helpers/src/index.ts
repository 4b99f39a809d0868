/**
 * @insitu/test-helpers — start real, private servers for tests: MariaDB (alone or as a
 * GTID-replicated cluster), etcd (alone or as a cluster) and PostgreSQL, each in a fresh
 * temp dir on free loopback ports, never touching a server already on the machine.
 * Everything started is killed and deleted by `stop()`, and killed when the test process
 * exits without stopping it.
 *
 * Start with {@link startMariaDb}; wait for conditions with `waitFor` from `@insitu/core`.
 * Missing binaries throw {@link MissingCommandError}: run `node scripts/test-deps.mjs` as root.
 */
export { freePort } from './free-port.js';
export { rawHttp } from './raw-http.js';
export type { RawHttpResponse } from './raw-http.js';
export { makeTempDir, removeDir } from './temp-dir.js';
export { requireCommand } from './require-command.js';
export { MissingCommandError } from './missing-command-error.js';
export { startMariaDb } from './start-mariadb.js';
export type { MariaDbInstance, MariaDbOptions } from './start-mariadb.js';
export { startMariaDbCluster } from './start-mariadb-cluster.js';
export type { MariaDbCluster, MariaDbClusterOptions } from './start-mariadb-cluster.js';
export { startEtcd } from './start-etcd.js';
export type { EtcdMember, EtcdMemberPlacement, EtcdOptions } from './start-etcd.js';
export { startEtcdCluster } from './start-etcd-cluster.js';
export type { EtcdCluster, EtcdClusterOptions } from './start-etcd-cluster.js';
export { startPostgres } from './start-postgres.js';
export type { PostgresInstance, PostgresOptions } from './start-postgres.js';
export { databaseTargets, stopSharedDatabases } from './database-targets.js';
export type { DatabaseTarget, DatabaseTargetConfig } from './database-targets.js';
export { startSmtpSink } from './start-smtp-sink.js';
export type { SmtpSink, ReceivedMail } from './start-smtp-sink.js';
export { startWebhookReceiver } from './start-webhook-receiver.js';
export type { WebhookReceiver, ReceivedHook } from './start-webhook-receiver.js';
export { createTestNetwork } from './network-namespaces.js';
export type { TestNetwork, NetworkNode } from './network-namespaces.js';
