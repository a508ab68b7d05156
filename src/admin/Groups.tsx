// Groups: the cluster's busiest groups (server API `groups`), optionally by name prefix; opening one lists its members
// (`presence`, page by page) with their availability, meta and since.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { call, type ApiResult } from './api';
import type { Report } from './App';
import { number, when } from './format';

type Busiest = ApiResult<'groups'>['groups'];
type Page = ApiResult<'presence'>;

export function Groups({ report }: { report: Report }) {
  const [prefix, setPrefix] = useState('');
  const [busiest, setBusiest] = useState<Busiest | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const load = useCallback(
    (prefix: string) => {
      call('groups', prefix === '' ? { limit: 50 } : { limit: 50, prefix }).then((result) => setBusiest(result.groups), report);
    },
    [report],
  );
  useEffect(() => load(''), [load]);

  return (
    <section>
      <h2>Groups</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          load(prefix);
        }}
      >
        <input type="search" placeholder="name starts with…" aria-label="Group name prefix" value={prefix} onInput={(event) => setPrefix(event.currentTarget.value)} />
        <button type="submit">Refresh</button>
      </form>
      {busiest === null ? (
        <p>Loading…</p>
      ) : busiest.length === 0 ? (
        <p>No group has a session.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>group</th>
                <th class="num">users</th>
                <th class="num">sessions</th>
              </tr>
            </thead>
            <tbody>
              {busiest.map(({ group, users, sessions }) => (
                <tr key={group} class={group === open ? 'selected' : undefined}>
                  <td>
                    <button type="button" class="link" onClick={() => setOpen(group)}>
                      {group}
                    </button>
                  </td>
                  <td class="num">{number(users)}</td>
                  <td class="num">{number(sessions)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open !== null && <Members key={open} group={open} report={report} />}
    </section>
  );
}

function Members({ group, report }: { group: string; report: Report }) {
  const [pages, setPages] = useState<Page[]>([]);
  const more = useCallback(
    (after: string | undefined) => {
      call('presence', after === undefined ? { group, limit: 100 } : { group, limit: 100, after }).then((page) => setPages((pages) => [...pages, page]), report);
    },
    [group, report],
  );
  useEffect(() => more(undefined), [more]);
  const last = pages[pages.length - 1];
  const next = last?.next ?? null;
  return (
    <section class="detail" aria-label={`Members of ${group}`}>
      <h3>
        Members of <code>{group}</code>
        {last !== undefined && <> · {number(last.count)} listed</>}
      </h3>
      {last === undefined ? (
        <p>Loading…</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>user</th>
                <th>status</th>
                <th>since</th>
                <th>meta</th>
              </tr>
            </thead>
            <tbody>
              {pages.flatMap((page) =>
                page.members.map((member) => (
                  <tr key={member.userId} data-member={member.userId}>
                    <td>{member.userId}</td>
                    <td>
                      <span class={`availability ${member.availability}`}>{member.availability}</span>
                    </td>
                    <td>{when(member.since)}</td>
                    <td>
                      <code class="meta">{JSON.stringify(member.meta)}</code>
                    </td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </div>
      )}
      {next !== null && (
        <button type="button" onClick={() => more(next)}>
          More members
        </button>
      )}
    </section>
  );
}
