// Publish: a test message to a group or a user through the server API's `publish`, and the cluster's count of
// envelopes written to clients (info's traffic, summed over the instances) moving with it.
import { useState } from 'preact/hooks';
import { ApiFailure, call } from './api';
import type { Report } from './App';
import { clock, number } from './format';
import type { Info } from './history';

/** Envelopes written to clients by every instance that reports its totals. */
function delivered(info: Info | null): number | null {
  if (info === null) return null;
  let total: number | null = null;
  for (const instance of info.instances) if ('traffic' in instance && instance.traffic) total = (total ?? 0) + instance.traffic.messagesOut;
  return total;
}

export function Publish({ info, report }: { info: Info | null; report: Report }) {
  const [kind, setKind] = useState<'group' | 'user'>('group');
  const [target, setTarget] = useState('');
  const [payload, setPayload] = useState('{ "text": "test message from the admin console" }');
  const [from, setFrom] = useState('admin-console');
  const [published, setPublished] = useState<{ to: string; at: number; baseline: number | null } | null>(null);
  const now = delivered(info);

  const publish = () => {
    // The notice of an earlier publish must not stand under this one's error.
    setPublished(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch (err) {
      report(new ApiFailure(0, 'INVALID_JSON', `the payload is not JSON: ${err instanceof Error ? err.message : String(err)}`, 'payload'));
      return;
    }
    const audience = kind === 'group' ? { group: target } : { user: target };
    call('publish', { ...audience, payload: parsed, from }).then(() => setPublished({ to: `${kind} ${target}`, at: Date.now(), baseline: now }), report);
  };

  return (
    <section>
      <h2>Publish</h2>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          publish();
        }}
      >
        <div class="row">
          <select aria-label="Audience" value={kind} onChange={(event) => setKind(event.currentTarget.value as 'group' | 'user')}>
            <option value="group">to group</option>
            <option value="user">to user</option>
          </select>
          <input aria-label={kind === 'group' ? 'Group' : 'User id'} placeholder={kind === 'group' ? 'group name' : 'user id'} required value={target} onInput={(event) => setTarget(event.currentTarget.value)} />
        </div>
        <label>
          Payload (JSON)
          <textarea rows={4} value={payload} onInput={(event) => setPayload(event.currentTarget.value)} />
        </label>
        <label>
          From (shown to recipients as from.userId)
          <input value={from} required onInput={(event) => setFrom(event.currentTarget.value)} />
        </label>
        <div>
          <button type="submit">Publish</button>
        </div>
      </form>
      {published !== null && (
        <p class="notice" role="status">
          Published to {published.to} at {clock(published.at)}.
        </p>
      )}
      <p class="summary">
        Messages written to clients by the cluster: <span data-testid="delivered">{now === null ? '–' : number(now)}</span>
        {published !== null && published.baseline !== null && now !== null && (
          <>
            {' '}
            (<span data-testid="delivered-since">{number(now - published.baseline)}</span> since the publish)
          </>
        )}
      </p>
    </section>
  );
}
