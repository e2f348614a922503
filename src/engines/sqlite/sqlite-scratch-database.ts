/**
 * The SQLite scratch-database role: a new database file in the system's temporary directory,
 * for a short job such as building a squashed baseline; drop() deletes it with its -wal, -shm
 * and -journal files.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redactUrl } from '../../core/redact.js';
import type { ScratchDatabase, ScratchDatabaseRole } from '../contract.js';

export const sqliteScratchDatabaseRole: ScratchDatabaseRole = {
  createScratch(_conn, { target }) {
    const file = path.join(tmpdir(), `dbward-scratch-${randomBytes(6).toString('hex')}.db`);
    // `wx`: never reuse someone else's file; 0600: the scratch copy of a schema is nobody else's.
    writeFileSync(file, '', { flag: 'wx', mode: 0o600 });
    // ?mode=rwc: the connection role opens (and sets up) a new database file only when asked to.
    const url = `sqlite:${file.split(path.sep).map(encodeURIComponent).join('/')}?mode=rwc`;
    const scratch: ScratchDatabase = {
      target: { ...target, name: `${target.name}~scratch`, url, displayUrl: redactUrl(url) },
      drop() {
        for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${file}${suffix}`, { force: true });
        return Promise.resolve();
      },
    };
    return Promise.resolve(scratch);
  },
};
