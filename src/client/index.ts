// The client SDK's entry point (package export "gateway-strategy/client").
export { GatewayClient, GatewayError } from './GatewayClient';
export type { ClientEvents, ConnectionState, CountUpdate, DataUpdate, GatewayClientOptions, PresenceUpdate, Signal, WebSocketConstructor, WebSocketLike } from './GatewayClient';
export type { Member } from '../types/domain';
