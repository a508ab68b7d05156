// The gateway's version, read once from package.json (works from src/ under ts-node and from dist/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const version: string = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
