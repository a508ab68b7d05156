// Summarizes what N connections added to a server's JavaScript heap: two V8 heap snapshots (before connecting and
// after, from `yarn bench --heap-snapshot`), grouped by constructor (objects), function name (closures) or kind
// (strings, arrays, code…), with count and shallow size per connection. Shallow size only: retained sizes need the
// dominator tree, which DevTools' Comparison view computes from the same two files.
// Run: yarn bench:heap <before.heapsnapshot> <after.heapsnapshot> --per <connections> [--top 25]
import { readFileSync } from 'node:fs';
import { integerOption, parseCommandLine, positiveOption, run, UsageError } from '../src/cli/args';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  name: string;
  countPerConnection: number;
  bytesPerConnection: number;
}

/** Count and shallow bytes by group name over a whole snapshot. */
function groups(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt!]!]!;
    const name = snap.strings[snap.nodes[i + nameAt!]!]!;
    const key = type === 'object' || type === 'native' || type === 'hidden' ? name : type === 'closure' ? `${name || '(anonymous)'}()` : `(${type})`;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += snap.nodes[i + sizeAt!]!;
    out.set(key, g);
  }
  return out;
}

/** What `after` holds more than `before`, per connection, heaviest first (groups that moved by a byte or more); the total first of all. */
export function heapPerConnection(before: string, after: string, connections: number): HeapGroup[] {
  const a = groups(before);
  const b = groups(after);
  const sum = (m: Map<string, { count: number; bytes: number }>, k: 'count' | 'bytes') => [...m.values()].reduce((t, g) => t + g[k], 0);
  const rows: HeapGroup[] = [];
  for (const [name, g] of b) {
    const was = a.get(name) ?? { count: 0, bytes: 0 };
    // Groups that moved by less than a byte per connection are noise (and would fill the results with thousands of rows).
    if (Math.abs(g.bytes - was.bytes) >= connections) rows.push({ name, countPerConnection: (g.count - was.count) / connections, bytesPerConnection: (g.bytes - was.bytes) / connections });
  }
  rows.sort((x, y) => y.bytesPerConnection - x.bytesPerConnection);
  const total = { name: '(total)', countPerConnection: (sum(b, 'count') - sum(a, 'count')) / connections, bytesPerConnection: (sum(b, 'bytes') - sum(a, 'bytes')) / connections };
  return [total, ...rows];
}

export function heapTable(rows: HeapGroup[], top: number): string {
  const lines = ['| constructor / kind | objects per connection | shallow bytes per connection |', '|---|---:|---:|'];
  for (const r of rows.slice(0, top + 1)) lines.push(`| ${r.name.replace(/\|/g, '\\|')} | ${r.countPerConnection.toFixed(2)} | ${r.bytesPerConnection.toFixed(0)} |`);
  return lines.join('\n');
}

const USAGE = `usage: yarn bench:heap <before.heapsnapshot> <after.heapsnapshot> --per <connections> [--top 25]

What the connections added to the heap between two V8 heap snapshots (yarn bench --heap-snapshot writes them to
bench/profiles/), by constructor: objects and shallow bytes per connection, heaviest first.

Options:
  --per <n>          connections opened between the two snapshots (required)
  --top <n>          how many groups to list (default: 25)
  -h, --help         this text

Exit status: 0 printed, 1 a file is not a readable heap snapshot, 2 wrong command line.`;

const command = {
  name: 'bench:heap',
  usage: USAGE,
  options: { per: { type: 'string' }, top: { type: 'string', default: '25' } },
  positionals: true,
} as const;

if (require.main === module) {
  run(command, async () => {
    const { values, positionals } = parseCommandLine(command);
    if (positionals.length !== 2) throw new UsageError(`two snapshots, before and after (got ${positionals.length})`);
    if (values.per === undefined) throw new UsageError('--per is required');
    const rows = heapPerConnection(positionals[0]!, positionals[1]!, positiveOption('--per', values.per));
    console.log(heapTable(rows, integerOption('--top', values.top)));
  });
}
