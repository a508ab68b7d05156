// Overview: every instance with its state, Redis, connections, sessions, message rates and fan-out time, and the
// same as charts since the page opened, up to the last minutes (one line per instance), refreshed by the console's poll.
import { Chart, colourOf } from './Chart';
import { duration, millis, number, perSecond } from './format';
import type { History, Info, Metric } from './history';

const CHARTS: { metric: Metric; title: string; format: (value: number) => string; whole?: boolean }[] = [
  { metric: 'connections', title: 'Connections', format: (value) => number(value), whole: true },
  { metric: 'inPerSec', title: 'Messages in / s', format: perSecond },
  { metric: 'outPerSec', title: 'Messages out / s', format: perSecond },
  { metric: 'fanoutMs', title: 'Mean fan-out time', format: millis },
];

const orDash = (value: number | null | undefined, format: (value: number) => string) => (value === null || value === undefined ? '–' : format(value));

export function Overview({ info, history }: { info: Info | null; history: History }) {
  if (info === null) return <p>Waiting for the first reading…</p>;
  const ids = history.instances();
  const totals = info.instances.reduce((sum, instance) => ('version' in instance ? { connections: sum.connections + instance.connections, sessions: sum.sessions + instance.sessions } : sum), { connections: 0, sessions: 0 });
  return (
    <section>
      <h2>Overview</h2>
      <p class="summary">
        <span data-testid="instance-count">{info.instances.length}</span> {info.instances.length === 1 ? 'instance' : 'instances'} · <span data-testid="total-connections">{totals.connections}</span> {totals.connections === 1 ? 'connection' : 'connections'} · {totals.sessions}{' '}
        {totals.sessions === 1 ? 'session' : 'sessions'}
        {info.redis !== undefined && <> · Redis {info.redis}</>}
      </p>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th>instance</th>
              <th>state</th>
              <th>Redis</th>
              <th class="num">connections</th>
              <th class="num">sessions</th>
              <th class="num">in / s</th>
              <th class="num">out / s</th>
              <th class="num">fan-out</th>
              <th class="num">uptime</th>
              <th>version</th>
            </tr>
          </thead>
          <tbody>
            {info.instances.map((instance) => {
              if (!('version' in instance)) {
                return (
                  <tr key={instance.id} data-instance={instance.id}>
                    <td>{instance.id}</td>
                    <td>
                      <span class="state unknown">unknown</span>
                    </td>
                    <td colSpan={8}>did not answer in time</td>
                  </tr>
                );
              }
              const latest = history.latest(instance.id);
              // Described instances have a reading, so they are among the charts' ids.
              const colour = colourOf(ids.indexOf(instance.id));
              return (
                <tr key={instance.id} data-instance={instance.id}>
                  <td>
                    <span class="swatch" style={{ background: colour }} />
                    {instance.id}
                  </td>
                  <td>
                    <span class={`state ${instance.state}`}>{instance.state}</span>
                  </td>
                  <td>{instance.redis ?? '–'}</td>
                  <td class="num" data-testid={`connections-${instance.id}`}>
                    {number(instance.connections)}
                  </td>
                  <td class="num">{number(instance.sessions)}</td>
                  <td class="num">{orDash(latest?.inPerSec, perSecond)}</td>
                  <td class="num">{orDash(latest?.outPerSec, perSecond)}</td>
                  <td class="num">{orDash(latest?.fanoutMs, millis)}</td>
                  <td class="num">{duration(instance.uptimeSec)}</td>
                  <td>{instance.version}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div class="charts">
        {CHARTS.map(({ metric, title, format, whole }) => (
          <Chart key={metric} title={title} ids={ids} data={history.series(metric, ids)} format={format} whole={whole} />
        ))}
      </div>
    </section>
  );
}
