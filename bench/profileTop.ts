// Summarizes a V8 .cpuprofile (from `yarn bench --profile`): self time per function, heaviest first.
// Run: yarn bench:profile bench/profiles/<file>.cpuprofile [--top 20] [--last <seconds>]
// --last keeps only the samples of the profile's final seconds (the steady state, without start-up and connecting).
import { readFileSync } from 'node:fs';
import { integerOption, parseCommandLine, positiveOption, run, UsageError } from '../src/cli/args';

const USAGE = `usage: yarn bench:profile <file.cpuprofile> [--top 20] [--last <seconds>]

Summarizes a V8 CPU profile (from yarn bench --profile, in bench/profiles/): self time per function, heaviest first.

Options:
  --top <n>          how many functions to list (default: 20)
  --last <s>         only the samples of the profile's final seconds (the steady state)
  -h, --help         this text

Exit status: 0 printed, 1 the file is not a readable CPU profile, 2 wrong command line.`;

const command = {
  name: 'bench:profile',
  usage: USAGE,
  options: { top: { type: 'string', default: '20' }, last: { type: 'string' } },
  positionals: true,
} as const;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function readProfile(file: string): Profile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  let profile: Partial<Profile> | null = null;
  try {
    profile = JSON.parse(text) as Partial<Profile> | null;
  } catch {
    // reported below
  }
  if (!profile || !Array.isArray(profile.nodes) || !Array.isArray(profile.samples) || !Array.isArray(profile.timeDeltas)) {
    throw new Error(`${file} is not a V8 CPU profile (.cpuprofile)`);
  }
  return profile as Profile;
}

run(command, async () => {
  const { values, positionals } = parseCommandLine(command);
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing the .cpuprofile file' : `one file at a time (got ${positionals.length})`);
  const top = integerOption('--top', values.top);
  const last = values.last === undefined ? undefined : positiveOption('--last', values.last);
  const profile = readProfile(positionals[0]!);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  const at: number[] = [];
  profile.timeDeltas.reduce((t, dt, i) => (at[i] = t + dt), 0);
  const from = last !== undefined ? (at[at.length - 1] ?? 0) - last * 1e6 : -Infinity;
  profile.samples.forEach((id, i) => {
    if (at[i]! < from) return;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}`);
  }
});
