import { existsSync } from 'node:fs';
import path from 'node:path';

/** Config file names looked for, in order, in each directory from the cwd upward. */
export const configFileNames = [
  'dbward.config.ts',
  'dbward.config.mts',
  'dbward.config.js',
  'dbward.config.mjs',
  'dbward.config.json',
];

/** The nearest dbward.config.* from `cwd` up to the filesystem root, or null. */
export function findConfigFile(cwd: string): string | null {
  let dir = path.resolve(cwd);
  for (;;) {
    for (const name of configFileNames) {
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}
