// The sign-in form: the operator types the gateway's API key (GW_API_KEY); the gateway answers with an HttpOnly
// session cookie, so the key is not kept by the page.
import { useState } from 'preact/hooks';
import { ApiFailure, signIn } from './api';
import type { Report } from './App';
import { ErrorBanner } from './ErrorBanner';

interface SignInProps {
  failure: ApiFailure | null;
  onSignedIn(): void;
  report: Report;
}

export function SignIn({ failure, onSignedIn, report }: SignInProps) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="sign-in"
      onSubmit={(event) => {
        event.preventDefault();
        setBusy(true);
        signIn(key).then(
          () => {
            setKey('');
            onSignedIn();
          },
          (err: unknown) => {
            setBusy(false);
            report(err);
          },
        );
      }}
    >
      <h1>gateway-strategy admin</h1>
      <p>Sign in with the gateway's API key (<code>GW_API_KEY</code>).</p>
      <ErrorBanner failure={failure} />
      <label>
        API key
        <input type="password" name="key" autocomplete="current-password" required value={key} onInput={(event) => setKey(event.currentTarget.value)} />
      </label>
      <button type="submit" disabled={busy}>
        Sign in
      </button>
    </form>
  );
}
