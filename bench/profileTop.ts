// Summarizes a V8 .cpuprofile (from `yarn bench --profile`): self time per function, heaviest first.
// Run: yarn bench:profile bench/profiles/<file>.cpuprofile [--top 20] [--last <seconds>]
// --last keeps only the samples of the profile's final seconds (the steady state, without start-up and connecting).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '20' }, last: { type: 'string' } }, allowPositionals: true });
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
const at: number[] = [];
profile.timeDeltas.reduce((t, dt, i) => (at[i] = t + dt), 0);
const from = values.last ? (at[at.length - 1] ?? 0) - Number(values.last) * 1e6 : -Infinity;
profile.samples.forEach((id, i) => {
  if (at[i]! < from) return;
  const node = byId.get(id)!;
  const { functionName, url, lineNumber } = node.callFrame;
  const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}`;
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}`);
}
