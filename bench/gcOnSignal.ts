// Preloaded into both servers by `yarn bench` (with --expose-gc): a full garbage collection on SIGUSR2, so the idle
// workload reads RSS without the garbage that happens to be uncollected at that moment (which made RSS per connection
// vary by ±2 KiB from run to run for the same server).
const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error('bench/gcOnSignal needs node --expose-gc');
process.on('SIGUSR2', () => {
  collect();
  process.send?.({ gc: true });
});
