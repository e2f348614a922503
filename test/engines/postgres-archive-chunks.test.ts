/**
 * Merging the per-row data blocks of an uncompressed custom-format archive
 * (src/engines/postgres/postgres-archive-chunks.ts), on real pg_dump output: pg_restore reading
 * the merged archive from stdin prints exactly what it prints for the original (every row, a row
 * over 1 MiB, a large object), fed in odd slices; archives it does not rewrite pass through
 * byte for byte.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import {
  distributeArchive,
  mergeArchiveChunks,
  splitBatch,
  SplitError,
  type ArchiveChunkMerger,
  type MergeOptions,
  type RowSplit,
} from '../../src/engines/postgres/postgres-archive-chunks.js';
import { findPgDump, findPgTool } from '../../src/engines/postgres/postgres-schema-dump.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';

const schema = `
CREATE TABLE a (id int PRIMARY KEY, body text, tags text[]);
INSERT INTO a SELECT g, repeat(md5(g::text), 1 + g % 7), ARRAY['x', g::text] FROM generate_series(1, 20000) g;
CREATE TABLE "b c" (id bigint, blob bytea, at timestamptz);
INSERT INTO "b c" SELECT g, decode(md5(g::text), 'hex'), '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, 5000) g;
INSERT INTO "b c" VALUES (0, decode(repeat('ab', 1500000), 'hex'), now());
CREATE TABLE empty (id int);
SELECT lo_from_bytea(0, 'a large object');
`;

/** The connection as the tools' environment: no password in their arguments. */
function toolEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: u.pathname.slice(1),
  };
}

/** `data` through a merger, in slices of `size` bytes. */
async function merged(
  data: Buffer,
  size: number,
  split?: RowSplit,
  options?: MergeOptions,
): Promise<{ out: Buffer; merger: ArchiveChunkMerger; slices: Buffer[]; chunks: Buffer[] }> {
  const slices: Buffer[] = [];
  // Copies: the merger rewrites its input buffers in place, as a process pipe hands them over.
  for (let at = 0; at < data.length; at += size) slices.push(Buffer.from(data.subarray(at, at + size)));
  const merger = mergeArchiveChunks(split, options);
  const chunks: Buffer[] = [];
  // A Writable sees each chunk as pushed (an async iterator would join them into new buffers).
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(slices), merger, sink);
  return { out: Buffer.concat(chunks), merger, slices, chunks };
}

/**
 * What pg_restore prints for an archive read from stdin (with `list`, a `-L` file: only those
 * entries), less its random \restrict key lines.
 */
function printed(archive: Buffer, list?: string): string {
  const args = ['--file=-', ...(list ? [`--use-list=${list}`] : [])];
  const run = spawnSync(findPgTool('pg_restore', 'DBWARD_PG_RESTORE')!, args, {
    input: archive,
    maxBuffer: 512 * 1024 * 1024,
  });
  assert.equal(run.status, 0, String(run.stderr));
  return String(run.stdout)
    .split('\n')
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .join('\n');
}

describe('merging the data blocks of a custom-format archive', { skip: skipReason('postgres') }, () => {
  let db: TestDatabase;
  let plain: Buffer;
  let compressed: Buffer;

  before(async () => {
    db = await freshDatabase('postgres');
    const env = toolEnv(db.url);
    const psql = spawnSync(
      findPgTool('psql', 'DBWARD_PSQL') ?? 'psql',
      ['-q', '-v', 'ON_ERROR_STOP=1', '-c', schema],
      {
        env,
      },
    );
    assert.equal(psql.status, 0, String(psql.stderr));
    const dump = (level: string): Buffer => {
      const run = spawnSync(findPgDump()!, ['--format=custom', `--compress=${level}`], {
        env,
        maxBuffer: 256 * 1024 * 1024,
      });
      assert.equal(run.status, 0, String(run.stderr));
      return run.stdout;
    };
    plain = dump('0');
    compressed = dump('6');
  });
  after(async () => {
    await db?.cleanup();
  });

  it('pg_restore reads the merged archive exactly as the original, whatever the input slices', async () => {
    const expected = printed(plain);
    assert.match(expected, /COPY public\.a /);
    for (const size of [64 * 1024, 1000, 7]) {
      const { out, merger } = await merged(plain, size);
      assert.ok(merger.merged >= 25_000, `${size}: rows were merged (${merger.merged})`);
      assert.ok(out.length < plain.length, `${size}: fewer length prefixes`);
      assert.equal(printed(out), expected, `${size}: the same SQL and rows`);
    }
  });

  it('sends rows on in the buffers it was given, not in copies of them', async () => {
    // Copying each input behind the last one's unfinished row doubled the memory a restore
    // allocated and kept V8's collector marking non-stop (a -j 2 restore: 7.4 CPU-s against 2.5).
    const { slices, chunks } = await merged(plain, 64 * 1024);
    const given = new Set(slices.map((slice) => slice.buffer));
    const total = chunks.reduce((sum, c) => sum + c.length, 0);
    const inPlace = chunks.filter((c) => given.has(c.buffer)).reduce((sum, c) => sum + c.length, 0);
    assert.ok(inPlace > 0.95 * total, `${inPlace} of ${total} bytes left in the input buffers`);
  });

  /** The rows pg_restore prints for `table` (its COPY data lines). */
  const rowsOf = (sql: string, table: string): string[] => {
    const start = sql.indexOf(`COPY ${table} `);
    assert.ok(start >= 0, `COPY ${table} in the output`);
    const body = sql.slice(sql.indexOf('\n', start) + 1);
    return body.slice(0, body.indexOf('\n\\.\n')).split('\n');
  };
  const dumpIdOf = (archive: Buffer, table: string): number => {
    const run = spawnSync(findPgTool('pg_restore', 'DBWARD_PG_RESTORE')!, ['--list'], { input: archive });
    const line = String(run.stdout)
      .split('\n')
      .find((l) => new RegExp(`^\\d+; \\d+ \\d+ TABLE DATA public ${table} `).test(l));
    assert.ok(line, `a TABLE DATA entry for ${table}`);
    return Number(line.split(';')[0]);
  };

  it('shares one table’s rows between parts: every row exactly once, whatever the slices', async () => {
    const original = printed(plain);
    for (const [table, tag] of [
      ['a', 'a'],
      ['"b c"', 'b c'],
    ]) {
      const expected = rowsOf(original, `public.${table}`);
      const dumpId = dumpIdOf(plain, tag!);
      for (const parts of [2, 3]) {
        for (const size of [64 * 1024, 1000, 7]) {
          const seen: string[] = [];
          for (let part = 0; part < parts; part++) {
            const { out, merger } = await merged(plain, size, { dumpId, part, parts });
            const sql = printed(out);
            const rows = rowsOf(sql, `public.${table}`);
            assert.ok(rows.length > 0 && rows.length < expected.length, `${table} ${part}/${parts}: a share`);
            assert.equal(merger.dropped + rows.length, expected.length, 'kept and dropped make the table');
            // The other tables are whole in every part (their own loaders skip them).
            const other = table === 'a' ? 'public."b c"' : 'public.a';
            assert.deepEqual(rowsOf(sql, other), rowsOf(original, other));
            seen.push(...rows);
          }
          assert.deepEqual(seen.sort(), [...expected].sort(), `${table} in ${parts} parts (${size})`);
        }
      }
    }
    assert.ok(20_000 > 2 * splitBatch, 'the test table spans several batches');
  });

  it('refuses to share rows of an archive it cannot read, rather than load them twice', async () => {
    const dumpId = dumpIdOf(plain, 'a');
    for (const [archive, split] of [
      [compressed, { dumpId, part: 0, parts: 2 }],
      [plain, { dumpId: 999_999, part: 0, parts: 2 }],
      [plain.subarray(0, 500_000), { dumpId, part: 1, parts: 2 }],
    ] as const) {
      await assert.rejects(
        merged(archive, 4096, split),
        SplitError,
        `${archive.length} bytes, ${split.dumpId}`,
      );
    }
  });

  it('leaves out the data of tables its reader does not load', async () => {
    const original = printed(plain);
    const a = dumpIdOf(plain, 'a');
    const listed = spawnSync(findPgTool('pg_restore', 'DBWARD_PG_RESTORE')!, ['--list'], { input: plain });
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-merge-'));
    try {
      const list = path.join(dir, 'a.list');
      writeFileSync(
        list,
        `${String(listed.stdout)
          .split('\n')
          .find((l) => l.startsWith(`${a};`))}\n`,
      );
      for (const size of [64 * 1024, 1000, 7]) {
        const whole = await merged(plain, size);
        const { out } = await merged(plain, size, undefined, { only: new Set([a]) });
        // "b c" holds a 3 MB row: its data is gone, a's is whole for a pg_restore that lists a.
        assert.ok(out.length < whole.out.length - 3_000_000, `${size}: b c left out (${out.length} bytes)`);
        assert.deepEqual(rowsOf(printed(out, list), 'public.a'), rowsOf(original, 'public.a'));
        // With a's rows split as well, the parts still hold every row exactly once.
        const parts = await Promise.all(
          [0, 1].map((part) => merged(plain, size, { dumpId: a, part, parts: 2 }, { only: new Set([a]) })),
        );
        const rows = parts.flatMap(({ out: part }) => rowsOf(printed(part, list), 'public.a'));
        assert.deepEqual(rows.sort(), rowsOf(original, 'public.a').sort(), `${size}: a in two parts`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('distributes one read of the archive between readers: their own tables, every split row once, no copies', async () => {
    const original = printed(plain);
    const a = dumpIdOf(plain, 'a');
    const b = dumpIdOf(plain, 'b c');
    const toc = String(
      spawnSync(findPgTool('pg_restore', 'DBWARD_PG_RESTORE')!, ['--list'], { input: plain }).stdout,
    ).split('\n');
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-distribute-'));
    try {
      // Reader 0 loads part 0 of a; reader 1 part 1 of a, and all of "b c".
      const owners = [new Set([a]), new Set([a, b])];
      const lists = owners.map((ids, i) => {
        const list = path.join(dir, `${i}.list`);
        writeFileSync(list, `${toc.filter((l) => ids.has(Number(l.split(';')[0]))).join('\n')}\n`);
        return list;
      });
      for (const size of [64 * 1024, 1000, 7]) {
        const slices: Buffer[] = [];
        for (let at = 0; at < plain.length; at += size)
          slices.push(Buffer.from(plain.subarray(at, at + size)));
        const distributor = distributeArchive({ dumpId: a, part: 0, parts: 2 }, owners);
        const received = distributor.outputs.map(() => [] as Buffer[]);
        // 'data' events see each chunk as written (an async iterator would join them into copies).
        const drained = distributor.outputs.map((output, i) => {
          output.on('data', (chunk: Buffer) => received[i]!.push(chunk));
          return finished(output);
        });
        await Promise.all([pipeline(Readable.from(slices), distributor), ...drained]);
        const [zero, one] = received.map((chunks, i) => printed(Buffer.concat(chunks), lists[i]));
        const rows = [...rowsOf(zero!, 'public.a'), ...rowsOf(one!, 'public.a')];
        assert.ok(
          rowsOf(zero!, 'public.a').length > 0 && rowsOf(one!, 'public.a').length > 0,
          `${size}: two parts`,
        );
        assert.deepEqual(rows.sort(), rowsOf(original, 'public.a').sort(), `${size}: every row of a once`);
        assert.deepEqual(
          rowsOf(one!, 'public."b c"'),
          rowsOf(original, 'public."b c"'),
          `${size}: b c whole`,
        );
        const bytes = received.map((chunks) => chunks.reduce((sum, c) => sum + c.length, 0));
        assert.ok(bytes[0]! < bytes[1]! - 3_000_000, `${size}: reader 0 gets no "b c" (${bytes.join(', ')})`);
        if (size === 64 * 1024) {
          const given = new Set(slices.map((slice) => slice.buffer));
          const inPlace = received
            .flat()
            .filter((c) => given.has(c.buffer))
            .reduce((sum, c) => sum + c.length, 0);
          assert.ok(inPlace > 0.95 * (bytes[0]! + bytes[1]!), `${inPlace} bytes passed on without a copy`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes archives it does not rewrite through byte for byte', async () => {
    const garbage = Buffer.from('PGDMP but not really an archive at all');
    for (const archive of [compressed, garbage, plain.subarray(0, 40)]) {
      const { out, merger } = await merged(archive, 4096);
      assert.equal(merger.merged, 0);
      assert.ok(out.equals(archive));
    }
  });
});
