// The raw baseline: a minimal `ws` server with a Set per group that sends one pre-serialized string to each member.
// No validation, no auth, no heartbeats. Text commands: "join <group>", "pub <group> <json payload>".
import { WebSocketServer, type WebSocket } from 'ws';

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', clientTracking: false });
const groups = new Map<string, Set<WebSocket>>();

wss.on('connection', (ws) => {
  const joined: string[] = [];
  ws.on('message', (raw) => {
    const text = String(raw);
    if (text.startsWith('join ')) {
      const group = text.slice(5);
      let members = groups.get(group);
      if (!members) groups.set(group, (members = new Set()));
      members.add(ws);
      joined.push(group);
    } else if (text.startsWith('pub ')) {
      const cut = text.indexOf(' ', 4);
      const group = text.slice(4, cut);
      const out = `{"type":"data_update","data":{"group":"${group}","from":{"userId":"publisher","connectionId":"c_baseline"},"payload":${text.slice(cut + 1)}},"ts":${Date.now()}}`;
      for (const member of groups.get(group) ?? []) member.send(out);
    }
  });
  ws.on('close', () => {
    for (const group of joined) groups.get(group)?.delete(ws);
  });
});

wss.on('listening', () => {
  const { port } = wss.address() as { port: number };
  process.send?.({ port });
});
