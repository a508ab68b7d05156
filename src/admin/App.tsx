// The console's frame: sign-in, the four pages (Overview, Groups, Users, Publish) behind tabs kept in the URL's hash,
// the error banner every page reports to, and the poll of `info` every POLL_MS that feeds the overview's history
// while signed in (it runs whichever page is shown, so the charts have no gap when the operator comes back).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure, call, signOut } from './api';
import { ErrorBanner } from './ErrorBanner';
import { Groups } from './Groups';
import { History, type Info } from './history';
import { Overview } from './Overview';
import { Publish } from './Publish';
import { SignIn } from './SignIn';
import { Users } from './Users';

const POLL_MS = 2_000;
/** How far back the charts go. */
const WINDOW_MS = 5 * 60_000;

const TABS = { overview: 'Overview', groups: 'Groups', users: 'Users', publish: 'Publish' } as const;
type Tab = keyof typeof TABS;

const tabFromHash = (): Tab => {
  const name = location.hash.slice(1);
  return name in TABS ? (name as Tab) : 'overview';
};

/** Shows a failure in the page; anything that is not an ApiFailure is the page's own bug, shown the same way. */
export type Report = (failure: unknown) => void;

export function App() {
  const [auth, setAuth] = useState<'checking' | 'signed-out' | 'signed-in'>('checking');
  const [tab, setTab] = useState<Tab>(tabFromHash);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const [info, setInfo] = useState<Info | null>(null);
  const history = useRef(new History(WINDOW_MS));

  const report = useCallback<Report>((err) => {
    const shown = err instanceof ApiFailure ? err : new ApiFailure(0, 'CONSOLE', err instanceof Error ? err.message : String(err));
    // A sign-in that expired or was made on an instance that restarted: back to the form, saying why.
    if (shown.status === 401) setAuth('signed-out');
    setFailure(shown);
  }, []);

  const record = useCallback((reading: Info) => {
    history.current.add(reading, Date.now());
    setInfo(reading);
  }, []);

  useEffect(() => {
    // A failure belongs to the page that reported it: another page starts without it.
    const follow = () => {
      setTab(tabFromHash());
      setFailure(null);
    };
    addEventListener('hashchange', follow);
    return () => removeEventListener('hashchange', follow);
  }, []);

  // Whether the browser holds a live sign-in: the first `info` answers it.
  useEffect(() => {
    call('info', {}).then(
      (reading) => {
        record(reading);
        setAuth('signed-in');
      },
      (err: unknown) => {
        setAuth('signed-out');
        if (!(err instanceof ApiFailure && err.status === 401)) report(err);
      },
    );
  }, [record, report]);

  useEffect(() => {
    if (auth !== 'signed-in') return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const reading = await call('info', {});
        if (!stopped) record(reading);
      } catch (err) {
        if (!stopped) report(err);
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    };
    timer = setTimeout(poll, POLL_MS);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [auth, record, report]);

  if (auth === 'checking') return <p class="boot">Connecting…</p>;
  if (auth === 'signed-out') {
    return (
      <SignIn
        failure={failure}
        onSignedIn={() => {
          setFailure(null);
          call('info', {}).then((reading) => {
            record(reading);
            setAuth('signed-in');
          }, report);
        }}
        report={report}
      />
    );
  }

  return (
    <div class="console">
      <header>
        <h1>gateway-strategy</h1>
        <nav>
          {(Object.keys(TABS) as Tab[]).map((name) => (
            <a key={name} href={`#${name}`} class={name === tab ? 'current' : undefined} aria-current={name === tab ? 'page' : undefined}>
              {TABS[name]}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="quiet"
          onClick={() =>
            signOut().then(() => {
              setFailure(null);
              setAuth('signed-out');
            }, report)
          }
        >
          Sign out
        </button>
      </header>
      <ErrorBanner failure={failure} onDismiss={() => setFailure(null)} />
      <main>
        {tab === 'overview' && <Overview info={info} history={history.current} />}
        {tab === 'groups' && <Groups report={report} />}
        {tab === 'users' && <Users report={report} />}
        {tab === 'publish' && <Publish info={info} report={report} />}
      </main>
    </div>
  );
}
