import { useState } from 'preact/hooks';
import { request } from '../api.js';
import { Alert, Field, Link, messageOf, type Submit } from '../ui.js';

export function SignIn(props: { onSignedIn: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Submit) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await request('POST', '/console/session', { body: { email, password } });
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
        Sign in to Insitu
      </h1>
      <form onSubmit={(e) => void submit(e)}>
        <Field label="Email" id="email">
          <input
            id="email"
            type="email"
            autocomplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </Field>
        <Field label="Password" id="password">
          <input
            id="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <Alert message={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p>
        New here? <Link href="/signup">Create an organisation</Link>
      </p>
    </main>
  );
}
