/**
 * The storage disk fills up in the middle of a backup: the backup fails with the system's own
 * reason, nothing is listed, no partial file is left behind, and the earlier backup is intact.
 * Uses a 4 MiB tmpfs, which needs root (mount); elsewhere the test is skipped.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { runCli } from '../helpers/run-cli.js';

const { Database: Driver } = await loadSqliteDriver();
const isRoot = process.getuid?.() === 0;

describe(
  'a storage disk that fills up mid-backup',
  { skip: isRoot ? false : 'needs root to mount a tmpfs' },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-full-'));
    const storage = path.join(dir, 'backups');
    mkdirSync(storage);
    after(() => {
      try {
        execFileSync('umount', [storage]);
      } catch {
        // not mounted
      }
    });

    it('fails cleanly, lists nothing new and leaves no partial file', async () => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', storage]);
      const db = path.join(dir, 'app.db');
      const conn = new Driver(db);
      conn.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)');
      conn.prepare('INSERT INTO blobs (data) VALUES (?)').run(randomBytes(100_000));
      conn.close();
      writeFileSync(
        path.join(dir, 'dbward.config.json'),
        '{ "targets": { "app": "sqlite:./app.db" }, "backups": { "storage": "./backups" } }',
      );

      const small = await runCli(['backup'], { cwd: dir });
      assert.equal(small.code, 0, small.all);

      // Random bytes do not compress: 8 MiB of them cannot fit in what is left of 4 MiB.
      const grow = new Driver(db);
      const insert = grow.prepare('INSERT INTO blobs (data) VALUES (?)');
      for (let i = 0; i < 8; i++) insert.run(randomBytes(1024 * 1024));
      grow.close();
      const full = await runCli(['backup'], { cwd: dir });
      assert.equal(full.code, 1, full.all);
      assert.match(full.all, /no space left|ENOSPC/i);
      assert.ok(!/\n\s+at /.test(full.all), 'no stack trace');

      const names = readdirSync(path.join(storage, 'app'));
      assert.equal(names.filter((n) => n.endsWith('.manifest.json')).length, 1, 'only the first backup');
      assert.deepEqual(
        names.filter((n) => n.includes('.partial-')),
        [],
        'no partial file left',
      );
      const listed = await runCli(['backups', 'list', '--json'], { cwd: dir });
      const { backups, problems } = JSON.parse(listed.stdout) as {
        backups: { id: string }[];
        problems: unknown[];
      };
      assert.equal(backups.length, 1);
      assert.deepEqual(problems, []);
      const verify = await runCli(['backup', 'verify', backups[0]!.id], { cwd: dir });
      assert.equal(verify.code, 0, verify.all);
    });
  },
);
