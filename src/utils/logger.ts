// Structured JSON logging (pino). Tokens are redacted wherever they appear in a logged object.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED_PATHS = ['token', '*.token', 'sessionToken', '*.sessionToken', 'authorization', '*.authorization', 'headers.authorization'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'gateway-strategy' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
