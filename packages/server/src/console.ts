import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { InsituError, safeEqual } from '@insitu/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { signIn } from './accounts.js';
import { userOf, type App } from './app.js';
import { SignInBody } from './api-schemas.js';
import type { ServerContext } from './context.js';
import { iso, presentUser } from './presenters.js';

/*
 * The web console at /console: its built files (packages/console/dist/public), and a
 * cookie form of the API's session for the browser.
 *
 * CSRF: the session cookie is HttpOnly and SameSite=Strict, and the API honours it only
 * on a request that also carries the header `x-insitu-csrf` equal to the (readable,
 * non-HttpOnly) `insitu_csrf` cookie set at sign-in. Another site can neither read that
 * cookie nor add a custom header without a CORS preflight, which we never answer, so a
 * forged request arrives without the session. Bearer tokens are unaffected.
 */

export const SESSION_COOKIE = 'insitu_session';
export const CSRF_COOKIE = 'insitu_csrf';
export const CSRF_HEADER = 'x-insitu-csrf';

/** Where the console's build lands: packages/console/dist/public, beside this package. */
const DEFAULT_DIR = fileURLToPath(new URL('../../../console/dist/public/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header || header.length > 8192) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/**
 * The session token a browser sends as a cookie, honoured only with the matching CSRF
 * header (see the module comment); undefined otherwise.
 */
export function cookieSessionToken(headers: IncomingHttpHeaders): string | undefined {
  const jar = cookies(headers.cookie);
  const token = jar.get(SESSION_COOKIE);
  const csrf = jar.get(CSRF_COOKIE);
  const sent = headers[CSRF_HEADER];
  if (!token?.startsWith('isu_ses_') || !csrf || typeof sent !== 'string' || csrf.length < 16) return undefined;
  return safeEqual(sent, csrf) ? token : undefined;
}

/** Options for {@link registerConsole}. */
export interface ConsoleOptions {
  /** Directory of the built console (index.html and assets/); packages/console/dist/public by default. */
  dir?: string;
}

/** Serve the console at /console and its cookie sign-in at /console/session. */
export function registerConsole(app: App, ctx: ServerContext, options: ConsoleOptions = {}): void {
  const dir = options.dir ?? DEFAULT_DIR;
  const ttlSeconds = ctx.config.auth.sessionTtlSeconds;
  const secure = Boolean(ctx.config.tls) || Boolean(ctx.config.publicUrl?.startsWith('https:'));
  const attributes = `Path=/; SameSite=Strict; Max-Age=${ttlSeconds}${secure ? '; Secure' : ''}`;

  app.post(
    '/console/session',
    { config: { auth: 'public' }, schema: { hide: true, body: SignInBody } },
    async (request, reply) => {
      // A sign-in another site submits (login CSRF) is refused where the browser says so.
      if (request.headers['sec-fetch-site'] === 'cross-site')
        throw new InsituError('INSITU_FORBIDDEN', 'cross-site sign-in is refused');
      const session = await signIn(
        ctx.store,
        request.body.email,
        request.body.password,
        ttlSeconds * 1000,
        ctx.passwordCost,
      );
      const csrf = randomBytes(24).toString('base64url');
      void reply.header('set-cookie', [
        `${SESSION_COOKIE}=${session.token}; HttpOnly; ${attributes}`,
        `${CSRF_COOKIE}=${csrf}; ${attributes}`,
      ]);
      void reply.header('cache-control', 'no-store');
      return reply.status(201).send({ expiresAt: iso(session.expiresAt), user: presentUser(session.user) });
    },
  );

  app.delete('/console/session', { schema: { hide: true } }, async (request, reply) => {
    await ctx.store.sessions.revoke(userOf(request).sessionId);
    void reply.header('set-cookie', [
      `${SESSION_COOKIE}=; HttpOnly; Path=/; SameSite=Strict; Max-Age=0`,
      `${CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0`,
    ]);
    return reply.status(204).send();
  });

  app.get('/console', { config: { auth: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.redirect('/console/', 301),
  );

  app.get('/console/*', { config: { auth: 'public' }, schema: { hide: true } }, async (request, reply) => {
    const wanted = (request.params as { '*': string })['*'];
    return serveFile(dir, wanted, request, reply);
  });
}

function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function serveFile(
  dir: string,
  wanted: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  if (!(await isFile(join(dir, 'index.html'))))
    throw new InsituError('INSITU_NOT_FOUND', 'the console is not built on this node: run `npm run build`');
  const path = normalize(join(dir, wanted));
  if (!path.startsWith(dir.endsWith(sep) ? dir : dir + sep) && path !== dir)
    throw new InsituError('INSITU_NOT_FOUND', 'no such file');
  let file = path;
  if (!(await isFile(path))) {
    // A path with an extension names a file that is not there; anything else is a page of
    // the single-page app, which index.html routes in the browser.
    if (extname(wanted) !== '') throw new InsituError('INSITU_NOT_FOUND', 'no such file in the console');
    file = join(dir, 'index.html');
  }
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
  // Assets carry a content hash in their name and never change; the page itself is
  // revalidated so a new build is picked up at once.
  void reply.header(
    'cache-control',
    file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  );
  void reply.header('vary', 'accept-encoding');
  const acceptsGzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  if (acceptsGzip && (await isFile(`${file}.gz`))) {
    void reply.header('content-encoding', 'gzip');
    return reply.type(type).send(await readFile(`${file}.gz`));
  }
  return reply.type(type).send(await readFile(file));
}
