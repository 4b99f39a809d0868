/*
 * The Insitu web console: a single-page app on the public REST API. It signs in with
 * POST /console/session (an HttpOnly SameSite cookie plus a CSRF token the API checks) and
 * then calls /api/v1 like any script would. Build: `npm run build -w @insitu/console`.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, onSignedOut, request } from './api.js';
import { match, navigate, usePath } from './router.js';
import { NAV } from './session.js';
import type { Me } from './types.js';
import { Link, messageOf } from './ui.js';
import { SignIn } from './pages/sign-in.js';
import { Catalog, DatasetPage } from './pages/catalog.js';
import { Apps, AppPage, VersionPage } from './pages/apps.js';
import { Approvals, ApprovalPage } from './pages/approvals.js';
import { Deployments } from './pages/deployments.js';
import { Services, ServicePage } from './pages/services.js';
import { Keys } from './pages/keys.js';
import { Providers } from './pages/providers.js';
import { Audit } from './pages/audit.js';
import { Operations } from './pages/operations.js';
import { SignUp } from './pages/sign-up.js';
import { Enrol } from './pages/enrol.js';
import { Orgs } from './pages/orgs.js';

function Routes(props: { me: Me; path: string; search: URLSearchParams }) {
  const { me, path, search } = props;
  let p: Record<string, string> | undefined;
  if (path === '/' || path === '/catalog') return <Catalog search={search} />;
  if ((p = match('/datasets/:id', path))) return <DatasetPage id={p.id ?? ''} />;
  if (path === '/apps') return <Apps me={me} />;
  if ((p = match('/apps/:id', path))) return <AppPage me={me} id={p.id ?? ''} />;
  if ((p = match('/apps/:id/versions/:versionId', path)))
    return <VersionPage me={me} appId={p.id ?? ''} versionId={p.versionId ?? ''} />;
  if (path === '/approvals') return <Approvals />;
  if ((p = match('/approvals/:id', path))) return <ApprovalPage id={p.id ?? ''} />;
  if (path === '/deployments') return <Deployments />;
  if (path === '/services') return <Services />;
  if ((p = match('/services/:id', path))) return <ServicePage me={me} id={p.id ?? ''} />;
  if (path === '/keys') return <Keys me={me} />;
  if (path === '/providers') return <Providers me={me} />;
  if (path === '/providers/enrol') return <Enrol me={me} />;
  if (path === '/orgs') return <Orgs />;
  if (path === '/audit') return <Audit me={me} search={search} />;
  if (path === '/operations') return <Operations />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No console page at this address. <Link href="/catalog">Go to the catalog</Link>.
      </p>
    </section>
  );
}

function Shell() {
  const { path, search, seq } = usePath();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [menuOpen, setMenuOpen] = useState(false);
  const [error, setError] = useState<string>();

  const load = () => api.get<Me>('/api/v1/users/me').then(setMe, () => setMe(null));
  const signedIn = () => {
    navigate('/');
    void load();
  };
  useEffect(() => {
    void load();
    return onSignedOut(() => setMe(null));
  }, []);
  useEffect(() => setMenuOpen(false), [path]);
  // Move focus to the new page's heading so keyboard and screen-reader users follow along.
  useEffect(() => document.getElementById('page-title')?.focus({ preventScroll: true }), [path, me]);

  if (me === undefined) return <p class="muted boot">Loading the console…</p>;
  if (me === null)
    return path === '/signup' ? <SignUp onSignedIn={signedIn} /> : <SignIn onSignedIn={() => void load()} />;

  const signOut = async () => {
    try {
      await request('DELETE', '/console/session');
      setMe(null);
      navigate('/');
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const items = NAV.filter((item) => item.show(me));
  const active = path === '/' ? '/catalog' : path;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/catalog" class="brand">
          Insitu
        </Link>
        <button
          type="button"
          class="menu"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <nav id="nav" aria-label="Main" class={menuOpen ? 'open' : ''}>
          <ul>
            {items.map((item) => (
              <li key={item.href}>
                <Link
                  href={item.href}
                  aria-current={active === item.href || active.startsWith(`${item.href}/`) ? 'page' : undefined}
                >
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={me.user.email}>
            {me.user.name}
            {me.platformAdmin ? ' (platform admin)' : ''}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <main id="main">
        <Routes key={seq} me={me} path={path} search={search} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<Shell />, root);
