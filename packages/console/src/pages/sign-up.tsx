import { useState } from 'preact/hooks';
import { request } from '../api.js';
import { Alert, Field, Link, messageOf, type Submit } from '../ui.js';

/**
 * Sign-up: a new organisation and its first administrator (`POST /api/v1/signup`), then a
 * cookie session for the console (`POST /console/session`; the API's bearer token in the
 * answer is not kept). Depending on the platform's sign-up mode the organisation is active
 * at once or waits for a platform administrator's approval.
 */
export function SignUp(props: { onSignedIn: () => void }) {
  const [org, setOrg] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Submit) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await request('POST', '/api/v1/signup', {
        body: {
          org: { name: org.trim(), ...(displayName.trim() ? { displayName: displayName.trim() } : {}) },
          user: { email: email.trim(), name: name.trim(), password },
        },
      });
      await request('POST', '/console/session', { body: { email: email.trim(), password } });
      props.onSignedIn();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1 id="page-title" tabIndex={-1}>
        Create an organisation
      </h1>
      <p class="muted">
        You become its administrator. A platform administrator may need to approve it before you can offer data or
        publish services.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <Field
          label="Organisation name"
          id="signup-org"
          hint="Lower case: a-z, 0-9, “.” and “-”; it appears in addresses"
        >
          <input
            id="signup-org"
            required
            pattern="[a-z0-9][a-z0-9.\-]{0,62}"
            aria-describedby="signup-org-hint"
            value={org}
            onInput={(e) => setOrg(e.currentTarget.value)}
          />
        </Field>
        <Field label="Display name (optional)" id="signup-display">
          <input id="signup-display" value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />
        </Field>
        <Field label="Your name" id="signup-name">
          <input
            id="signup-name"
            autocomplete="name"
            required
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <Field label="Email" id="signup-email">
          <input
            id="signup-email"
            type="email"
            autocomplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </Field>
        <Field label="Password" id="signup-password" hint="At least 10 characters">
          <input
            id="signup-password"
            type="password"
            autocomplete="new-password"
            minLength={10}
            required
            aria-describedby="signup-password-hint"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <Alert message={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create organisation'}
        </button>
      </form>
      <p>
        Have an account? <Link href="/">Sign in</Link>
      </p>
    </main>
  );
}
