import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { registerSecret } from '../core/redact.js';

/**
 * Load `.env` from `dir` into `env` without overriding variables that are already set (the real
 * environment wins, as with dotenv and Node's --env-file). Returns the file loaded, or null.
 * Node's own parser (`util.parseEnv`, Node ≥ 20.12) does the parsing.
 */
export function loadDotenv(dir: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const file = path.join(dir, '.env');
  if (!existsSync(file)) return null;
  const parsed = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  for (const [key, value] of Object.entries(parsed)) {
    if (/pass|secret|token|key/i.test(key)) registerSecret(value);
    if (env[key] === undefined) env[key] = value;
  }
  return file;
}
