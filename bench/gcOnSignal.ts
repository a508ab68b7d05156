// Preloaded into every server by `yarn bench` (with --expose-gc): a full garbage collection on SIGUSR2, so the idle
// workload reads RSS without the garbage that happens to be uncollected at that moment (which made RSS per connection
// vary by ±2 KiB from run to run for the same server); and a heap snapshot when the benchmark asks for one over IPC
// (`{ heapSnapshot: file }`, answered with `{ snapshot: file }`).
import { writeHeapSnapshot } from 'node:v8';

const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error('bench/gcOnSignal needs node --expose-gc');
process.on('SIGUSR2', () => {
  collect();
  process.send?.({ gc: true });
});
process.on('message', (m: { heapSnapshot?: string }) => {
  if (m.heapSnapshot) process.send?.({ snapshot: writeHeapSnapshot(m.heapSnapshot) });
});
// Listening for messages must not keep a server alive on its own.
process.channel?.unref();
