// uWebSockets.js as a competitor baseline, with its native pub/sub: `ws.subscribe(group)` on join and
// `app.publish(group, text)` per publish. Same text commands as baselineServer.ts: "join <group>", "pub <group> <json>".
// It loads the native binary itself: the package's entry quietly falls back to a JavaScript implementation on a
// Node.js it has no binary for, which would not be uWS at all. When the binary does not load it reports
// `{ unavailable }` and exits, and the benchmark goes on without it.
import { createRequire } from 'node:module';
import type * as Uws from '@trufflesuite/uws-js-unofficial';

function load(): typeof Uws | string {
  const binary = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return createRequire(__filename)(binary) as typeof Uws;
  } catch (err) {
    return err instanceof Error ? err.message.split('\n')[0]! : String(err);
  }
}

const uws = load();
if (typeof uws === 'string') {
  process.send?.({ unavailable: uws }, () => process.exit(0));
} else {
  const app = uws.App();
  app.ws<Record<string, never>>('/*', {
    message: (ws, message) => {
      const text = Buffer.from(message).toString();
      if (text.startsWith('join ')) {
        ws.subscribe(text.slice(5));
      } else if (text.startsWith('pub ')) {
        const cut = text.indexOf(' ', 4);
        const group = text.slice(4, cut);
        app.publish(group, `{"type":"data_update","data":{"group":"${group}","from":{"userId":"publisher","connectionId":"c_baseline"},"payload":${text.slice(cut + 1)}},"ts":${Date.now()}}`);
      }
    },
  });
  app.listen('127.0.0.1', 0, (listenSocket) => {
    if (!listenSocket) throw new Error('uWebSockets.js could not listen on 127.0.0.1');
    process.send?.({ port: uws.us_socket_local_port(listenSocket) });
  });
}
