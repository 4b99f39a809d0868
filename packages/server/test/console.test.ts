import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, TEST_PASSWORD, expectStatus, startApi } from './fixtures.js';

/*
 * The console's server side: its built files at /console (types, caching, the single-page
 * fallback, no way out of its directory) and the cookie session, which the API honours
 * only beside the CSRF header. Needs the console built (`npm run build` does it).
 */

const sqlite = databaseTargets().filter((target) => target.dialect === 'sqlite');

for (const target of sqlite) {
  describe('web console at /console', () => {
    let api: Api;
    before(async () => {
      api = await startApi(target);
      expectStatus(await api.call('POST', '/api/v1/orgs', { token: api.adminToken, body: { name: 'webco' } }), 201);
    });
    after(async () => api.close());

    function cookiesOf(setCookie: string | string[] | undefined): Map<string, string> {
      const out = new Map<string, string>();
      for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
        const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
        const eq = pair.indexOf('=');
        out.set(pair.slice(0, eq), [pair.slice(eq + 1), ...attributes].join('; '));
      }
      return out;
    }

    it('serves the page, its hashed assets with long caching, and the page itself for every app path', async () => {
      const redirect = await api.call('GET', '/console');
      assert.equal(redirect.statusCode, 301);
      assert.equal(redirect.headers.location, '/console/');

      const page = await api.call('GET', '/console/');
      assert.equal(page.statusCode, 200);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.equal(page.headers['cache-control'], 'no-cache');
      assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      const script = /src="(\/console\/assets\/main-[A-Z0-9]+\.js)"/.exec(page.body)?.[1];
      const style = /href="(\/console\/assets\/styles-[A-Z0-9]+\.css)"/.exec(page.body)?.[1];
      assert.ok(script && style, 'the page names its bundled script and style');

      const js = await api.call('GET', script, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(js.statusCode, 200);
      assert.match(String(js.headers['content-type']), /^text\/javascript/);
      assert.equal(js.headers['content-encoding'], 'gzip');
      assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.ok(
        gunzipSync(js.rawPayload).toString().includes('/api/v1/'),
        'the bundle is the console on the public API',
      );
      const css = await api.call('GET', style);
      assert.match(String(css.headers['content-type']), /^text\/css/);
      assert.equal(css.headers['content-encoding'], undefined, 'no gzip unless the client asks for it');

      const deep = await api.call('GET', '/console/datasets/dst_whatever');
      assert.equal(deep.statusCode, 200);
      assert.equal(deep.body, page.body, 'a page of the app loads the app, which routes in the browser');

      for (const missing of [
        '/console/assets/nothing.js',
        '/console/..%2f..%2fpackage.json',
        '/console/%2e%2e/%2e%2e/package.json',
      ]) {
        const response = await api.call('GET', missing);
        assert.equal(response.statusCode, 404, missing);
        assert.match(response.json().error.code, /^INSITU_(ROUTE_)?NOT_FOUND$/);
        assert.ok(!response.body.includes('"name"'), 'no file outside the console leaks');
      }
    });

    it('signs in with an HttpOnly SameSite session cookie the API honours only beside the CSRF header', async () => {
      const wrong = await api.call('POST', '/console/session', {
        body: { email: 'root@platform.test', password: 'not-the-password' },
      });
      assert.equal(wrong.statusCode, 401);
      assert.equal(wrong.headers['set-cookie'], undefined);

      const crossSite = await api.call('POST', '/console/session', {
        body: { email: 'root@platform.test', password: TEST_PASSWORD },
        headers: { 'sec-fetch-site': 'cross-site' },
      });
      assert.equal(crossSite.statusCode, 403, 'a sign-in posted by another site is refused');

      const signIn = await api.call('POST', '/console/session', {
        body: { email: 'root@platform.test', password: TEST_PASSWORD },
      });
      assert.equal(signIn.statusCode, 201);
      assert.equal(signIn.json().user.email, 'root@platform.test');
      assert.ok(!signIn.body.includes('isu_ses_'), 'the session token never reaches page scripts');
      const jar = cookiesOf(signIn.headers['set-cookie']);
      const session = jar.get('insitu_session') ?? '';
      const csrf = jar.get('insitu_csrf') ?? '';
      assert.match(session, /^isu_ses_\S+; HttpOnly; Path=\/; SameSite=Strict; Max-Age=\d+$/);
      assert.match(csrf, /^[A-Za-z0-9_-]{32}; Path=\/; SameSite=Strict; Max-Age=\d+$/);
      assert.ok(!csrf.includes('HttpOnly'), 'the page reads the CSRF token to send it back');
      const sessionValue = session.split(';')[0] ?? '';
      const csrfValue = csrf.split(';')[0] ?? '';
      const cookie = `insitu_session=${sessionValue}; insitu_csrf=${csrfValue}`;

      const forged = await api.call('GET', '/api/v1/users/me', { headers: { cookie } });
      assert.equal(
        forged.statusCode,
        401,
        'the cookie alone (what a forged cross-site request carries) is not a session',
      );
      const mismatched = await api.call('GET', '/api/v1/users/me', {
        headers: { cookie, 'x-insitu-csrf': `${csrfValue.slice(0, -1)}x` },
      });
      assert.equal(mismatched.statusCode, 401);
      const me = await api.call('GET', '/api/v1/users/me', { headers: { cookie, 'x-insitu-csrf': csrfValue } });
      assert.equal(me.statusCode, 200);
      assert.equal(me.json().platformAdmin, true);
      const write = await api.call('POST', '/api/v1/orgs', {
        headers: { cookie, 'x-insitu-csrf': csrfValue },
        body: { name: 'cookieco' },
      });
      assert.equal(write.statusCode, 201, 'writes work the same way');

      const signOut = await api.call('DELETE', '/console/session', { headers: { cookie, 'x-insitu-csrf': csrfValue } });
      assert.equal(signOut.statusCode, 204);
      assert.match(String(cookiesOf(signOut.headers['set-cookie']).get('insitu_session')), /Max-Age=0/);
      const after = await api.call('GET', '/api/v1/users/me', { headers: { cookie, 'x-insitu-csrf': csrfValue } });
      assert.equal(after.statusCode, 401, 'signing out revokes the session itself, not only the cookie');
      const bearer = await api.call('GET', '/api/v1/users/me', { token: sessionValue });
      assert.equal(bearer.statusCode, 401);
    });
  });
}
