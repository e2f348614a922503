import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** dbward's own version, from its package.json (recorded with every applied migration). */
export function dbwardVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return cached;
}
