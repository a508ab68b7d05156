// Preloaded into a gateway process by process.test.ts: after start-up, throws from a timer (or, with
// CRASH_KIND=reject, leaves a promise rejection unhandled), as a bug in a callback would.
setTimeout(() => {
  if (process.env.CRASH_KIND === 'reject') void Promise.reject(new Error('boom from a promise'));
  else throw new Error('boom from a timer');
}, 1500);
