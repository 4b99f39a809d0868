import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { InsituError } from '@insitu/core';
import { openStore } from '@insitu/store';
import { ensureAnchorKey, initPlatform, publicKeyFileOf, storeConfigFor } from '@insitu/server';
import { createPlatformCa, issueServerCertificate } from '@insitu/tunnel';
import { stringify } from 'yaml';
import { dataDirOf, ensureDataDir, isInitialised, loadCliServerConfig, type DataDirOptions } from '../data-dir.js';
import { line, type CliIo } from '../io.js';

export interface InitOptions extends DataDirOptions {
  adminEmail: string;
  databaseUrl?: string;
  host?: string;
  port?: number;
  json?: boolean;
}

/** What `insitu init` made; the password is printed once and never stored in clear. */
export interface InitResult {
  dataDir: string;
  configFile: string;
  admin: { email: string; password: string };
  /** The platform CA (agents pin it) and the server certificate issued from it. */
  tls: { caFile: string; certFile: string; keyFile: string };
  /** The key that signs audit chain heads (mode 0600) and its published public half. */
  auditAnchor: { keyFile: string; publicKeyFile: string; keyId: string };
}

/**
 * Create the platform CA and a server certificate for `host` (plus localhost) in
 * `<data dir>/tls/`. Agents pin `ca.pem`; `tls.certFile`/`tls.keyFile` in the config
 * turn TLS on for the API and the tunnel endpoint.
 */
async function writePlatformTls(dataDir: string, host: string): Promise<InitResult['tls']> {
  const dir = join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createPlatformCa();
  const hosts = [...new Set([host === '0.0.0.0' || host === '::' ? 'localhost' : host, 'localhost', '127.0.0.1'])];
  const server = await issueServerCertificate(ca, { hosts });
  const files = {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server-key.pem'),
  };
  await writeFile(files.caFile, ca.certPem, { mode: 0o644 });
  await writeFile(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  await writeFile(files.certFile, server.certPem, { mode: 0o644 });
  await writeFile(files.keyFile, server.keyPem, { mode: 0o600 });
  return files;
}

/**
 * Initialise a data directory: write `config.yaml`, create and migrate the database,
 * and create the platform organisation with its first administrator.
 */
export async function initDataDir(options: InitOptions, io: CliIo): Promise<InitResult> {
  const dataDir = dataDirOf(options, io);
  if (isInitialised(dataDir))
    throw new InsituError('INSITU_ALREADY_INITIALISED', `${dataDir} is initialised already (config.yaml exists)`);
  await ensureDataDir(dataDir);
  const fileConfig: Record<string, unknown> = {
    listen: { host: options.host ?? '127.0.0.1', port: options.port ?? 7070 },
    database: { url: options.databaseUrl ?? 'sqlite:platform.db' },
  };
  const configFile = join(dataDir, 'config.yaml');
  // Validate before writing, so a bad flag leaves nothing behind.
  const config = loadCliServerConfig({}, io, dataDir, fileConfig);
  const store = await openStore(storeConfigFor(config, dataDir));
  try {
    const init = await initPlatform(
      store,
      { adminEmail: options.adminEmail },
      { N: 2 ** config.auth.passwordCost, r: 8, p: 1 },
    );
    const header = '# Insitu platform configuration. Every option and its default: packages/server/README.md\n';
    const tls = await writePlatformTls(dataDir, options.host ?? '127.0.0.1');
    const anchorKeyFile = isAbsolute(config.audit.anchorKeyFile)
      ? config.audit.anchorKeyFile
      : join(dataDir, config.audit.anchorKeyFile);
    const anchor = await ensureAnchorKey(anchorKeyFile);
    await writeFile(configFile, header + stringify(fileConfig), { mode: 0o600 });
    return {
      dataDir,
      configFile,
      admin: { email: init.admin.email, password: init.password },
      tls,
      auditAnchor: { keyFile: anchorKeyFile, publicKeyFile: publicKeyFileOf(anchorKeyFile), keyId: anchor.key.keyId },
    };
  } finally {
    await store.close();
  }
}

export async function runInit(options: InitOptions, io: CliIo): Promise<void> {
  const result = await initDataDir(options, io);
  if (options.json) {
    line(io.stdout, JSON.stringify(result));
    return;
  }
  line(io.stdout, `Initialised ${result.dataDir}`);
  line(io.stdout, `  config:   ${result.configFile}`);
  line(io.stdout, `  admin:    ${result.admin.email}`);
  line(io.stdout, `  password: ${result.admin.password}`);
  line(io.stdout, `  CA:       ${result.tls.caFile} (agents pin it; tls.certFile/keyFile in the config turn TLS on)`);
  line(
    io.stdout,
    `  audit:    ${result.auditAnchor.keyFile} signs audit chain heads (key ${result.auditAnchor.keyId}; public key ${result.auditAnchor.publicKeyFile})`,
  );
  line(io.stdout, 'The password is shown only now; only its scrypt hash is stored.');
}
