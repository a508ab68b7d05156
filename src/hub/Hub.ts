// Hub: owns the WebSocketServer, accepts upgrades on the /rt path only, and forwards connection lifecycle to typed handlers.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import proxyaddr from 'proxy-addr';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { routes } from '../config/routes';
import type { Logger } from '../utils/logger';
import type { ConnectionContext } from './ConnectionContext';
import type { ConnectionRateLimiter } from './rateLimits';

/** What the Hub calls; the Router implements it. */
export interface HubHandlers {
  onOpen(socket: WebSocket, ip: string): ConnectionContext;
  onMessage(ctx: ConnectionContext, data: RawData, isBinary: boolean): void;
  /** A WebSocket pong (answers the pings liveness sends to silent connections). */
  onPong(ctx: ConnectionContext): void;
  onClose(ctx: ConnectionContext, code: number): void;
}

export type HubPhase = 'starting' | 'open' | 'draining';

export interface HubOptions {
  logger: Logger;
  maxPayloadBytes: number;
  isOriginAllowed(origin: string): boolean;
  connectionLimiter: ConnectionRateLimiter;
  /** Which peers' X-Forwarded-For to believe (the same function Express uses for `trust proxy`). */
  trustProxy(address: string, hop: number): boolean;
}

/** Answers a refused upgrade with a plain HTTP status and closes the socket. */
function abortHandshake(socket: Duplex, status: number, headers: Record<string, string> = {}): void {
  if (socket.writable) {
    const body = STATUS_CODES[status] ?? 'Error';
    const head = [
      `HTTP/1.1 ${status} ${body}`,
      'Connection: close',
      'Content-Type: text/plain; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy();
}

function onHandshakeSocketError(this: Duplex): void {
  this.destroy();
}

export class Hub {
  private readonly wss: WebSocketServer;
  /** Upgrades are accepted only while open: before start-up completes and while draining they are answered 503. */
  private phase: HubPhase = 'starting';

  constructor(
    server: Server,
    private readonly handlers: HubHandlers,
    private readonly options: HubOptions,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, clientTracking: false });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((err: unknown) => {
        options.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'upgrade failed');
        abortHandshake(socket, 500);
      });
    });
  }

  /** Where the gateway is in its life, as upgrades see it (and /health reports it). */
  get state(): HubPhase {
    return this.phase;
  }

  /** Start-up is complete: upgrades are accepted from now on. */
  open(): void {
    if (this.phase === 'starting') this.phase = 'open';
  }

  /** From now on upgrades are answered 503 (shutdown in progress). */
  drain(): void {
    this.phase = 'draining';
  }

  close(): void {
    this.wss.close();
  }

  /** The early-return chain: path, not open (starting or draining), Origin, per-IP rate, then the WebSocket handshake itself. */
  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', onHandshakeSocketError);
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== routes.ws) return abortHandshake(socket, 404);
    if (this.phase !== 'open') return abortHandshake(socket, 503, { 'Retry-After': '5' });
    const ip = proxyaddr(req, this.options.trustProxy);
    const origin = req.headers.origin;
    if (origin !== undefined && !this.options.isOriginAllowed(origin)) {
      this.options.logger.debug({ ip, origin }, 'upgrade refused: origin not allowed');
      return abortHandshake(socket, 403);
    }
    const admission = await this.options.connectionLimiter.admit(ip);
    if (!admission.ok) {
      this.options.logger.debug({ ip }, 'upgrade refused: connection rate');
      return abortHandshake(socket, 429, { 'Retry-After': String(Math.max(1, Math.ceil(admission.retryAfterMs / 1000))) });
    }
    if (this.phase !== 'open') return abortHandshake(socket, 503, { 'Retry-After': '5' });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.removeListener('error', onHandshakeSocketError);
      this.attach(ws, ip);
    });
  }

  private attach(ws: WebSocket, ip: string): void {
    const ctx = this.handlers.onOpen(ws, ip);
    ws.on('message', (data, isBinary) => this.handlers.onMessage(ctx, data, isBinary));
    ws.on('pong', () => this.handlers.onPong(ctx));
    ws.on('error', (err) =>
      this.options.logger.debug({ connectionId: ctx.id, userId: ctx.session?.userId, ip, err: err.message }, 'socket error'),
    );
    ws.once('close', (code) => this.handlers.onClose(ctx, code));
  }
}
