// Socket.IO 4 as a competitor baseline: the websocket transport only, one room per group, and each publish emitted to
// the room with `io.to(group).emit('data_update', …)` (Socket.IO encodes the packet once per broadcast). Events from
// clients: "join" (group, ack) and "pub" (group, payload). Engine.IO pings every client every 25 s, its default.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (group: string, ack?: () => void) => {
    void socket.join(group);
    ack?.();
  });
  socket.on('pub', (group: string, payload: unknown) => {
    io.to(group).emit('data_update', { group, from: { userId: 'publisher', connectionId: socket.id }, payload, ts: Date.now() });
  });
});

http.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (http.address() as AddressInfo).port });
});
