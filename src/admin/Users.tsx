// Users: a user's sessions across the cluster (server API `user`: instance, groups, availability, since, attached or
// resumable), and `disconnect` of one session or of all of them, each after a confirmation. Without "let it
// reconnect" the client is told not to come back (close 4005); with it, to reconnect into a fresh session (4006).
import { useState } from 'preact/hooks';
import { call, type ApiResult } from './api';
import type { Report } from './App';
import { Confirm } from './Confirm';
import { when } from './format';

type Sessions = ApiResult<'user'>['sessions'];

/** What the confirmation is about: one session of the user, or every one. */
type Pending = { user: string; session?: string };

export function Users({ report }: { report: Report }) {
  const [query, setQuery] = useState('');
  const [shown, setShown] = useState<{ user: string; sessions: Sessions } | null>(null);
  const [reconnect, setReconnect] = useState(false);
  const [pending, setPending] = useState<Pending | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const search = (user: string) => call('user', { user }).then((result) => setShown(result), report);

  const disconnect = ({ user, session }: Pending) => {
    setPending(null);
    call('disconnect', { user, reconnect, reason: 'ended from the admin console', ...(session === undefined ? {} : { session }) }).then((result) => {
      setNotice(`Ended ${result.sessions} ${result.sessions === 1 ? 'session' : 'sessions'} of ${user} (close ${reconnect ? '4006' : '4005'}).`);
      return search(user);
    }, report);
  };

  return (
    <section>
      <h2>Users</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          setNotice(null);
          void search(query.trim());
        }}
      >
        <input type="search" placeholder="user id" aria-label="User id" required value={query} onInput={(event) => setQuery(event.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      {notice !== null && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {shown !== null && (
        <section class="detail" aria-label={`Sessions of ${shown.user}`}>
          <h3>
            Sessions of <code>{shown.user}</code> · {shown.sessions.length}
          </h3>
          {shown.sessions.length === 0 ? (
            <p>No session.</p>
          ) : (
            <>
              <div class="row">
                <label class="check">
                  <input type="checkbox" checked={reconnect} onChange={(event) => setReconnect(event.currentTarget.checked)} />
                  let the clients reconnect (fresh session)
                </label>
                <button type="button" class="danger" onClick={() => setPending({ user: shown.user })}>
                  Disconnect everywhere
                </button>
              </div>
              <div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th>session</th>
                      <th>instance</th>
                      <th>groups</th>
                      <th>status</th>
                      <th>connected since</th>
                      <th>state</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {shown.sessions.map((session) => (
                      <tr key={session.sessionId} data-session={session.sessionId}>
                        <td>
                          <code>{session.sessionId}</code>
                        </td>
                        <td>{session.instance}</td>
                        {'groups' in session ? (
                          <>
                            <td>{session.groups.join(', ') || '–'}</td>
                            <td>
                              <span class={`availability ${session.availability}`}>{session.availability}</span>
                            </td>
                            <td>{when(session.connectedSince)}</td>
                            <td>
                              <span class={`state ${session.state}`}>{session.state === 'resumable' ? 'orphaned (resumable)' : session.state}</span>
                            </td>
                          </>
                        ) : (
                          <>
                            <td colSpan={3}>its instance did not answer</td>
                            <td>
                              <span class="state unknown">unknown</span>
                            </td>
                          </>
                        )}
                        <td>
                          <button type="button" class="danger small" onClick={() => setPending({ user: shown.user, session: session.sessionId })}>
                            Disconnect
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          )}
        </section>
      )}
      {pending !== null && (
        <Confirm action={pending.session === undefined ? 'Disconnect everywhere' : 'Disconnect'} onConfirm={() => disconnect(pending)} onCancel={() => setPending(null)}>
          {pending.session === undefined ? (
            <p>
              End every session of <code>{pending.user}</code>, on every instance?
            </p>
          ) : (
            <p>
              End session <code>{pending.session}</code> of <code>{pending.user}</code>?
            </p>
          )}
          <p>{reconnect ? 'The clients are told to reconnect into a fresh session (close 4006).' : 'The clients are told not to reconnect until they have a new token (close 4005).'}</p>
        </Confirm>
      )}
    </section>
  );
}
