/**
 * PostgreSQL schema dump: pg_dump against a real server (content, determinism, no owners or
 * secrets), the errors for a missing or too-old pg_dump, and the pure pieces (argv/env, version
 * parsing, normalization) without a server.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DbwardError } from '../../src/core/errors.js';
import type { Target } from '../../src/core/target.js';
import type { SchemaDumpRole, SqlConnection } from '../../src/engines/contract.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import {
  normalizeDump,
  parsePgDumpVersion,
  pgDumpEnvOverride,
  pgDumpInvocation,
} from '../../src/engines/postgres/postgres-schema-dump.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const schemaSql = [
  `CREATE TABLE public.users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  'CREATE UNIQUE INDEX users_email_idx ON public.users (email)',
  "CREATE VIEW public.recent_users AS SELECT id, email FROM public.users WHERE created_at > now() - interval '1 day'",
];

/** Run `fn` with $DBWARD_PG_DUMP set to `value`, restoring it afterwards. */
async function withPgDump<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[pgDumpEnvOverride];
  process.env[pgDumpEnvOverride] = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[pgDumpEnvOverride];
    else process.env[pgDumpEnvOverride] = saved;
  }
}

async function expectDumpError(fn: () => Promise<unknown>): Promise<DbwardError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, 'E_SCHEMA_DUMP');
    return err;
  }
  assert.fail('expected the dump to fail');
}

describe('postgres schema dump (server)', { skip: skipReason('postgres') }, () => {
  let db: TestDatabase;
  let conn: SqlConnection;
  let target: Target;
  let role: SchemaDumpRole;
  let password: string;

  const dump = (url = target.url): Promise<string> =>
    role.dumpSchema(conn, { target, spec: postgresEngine.parseUrl(url) });

  before(async () => {
    db = await freshDatabase('postgres');
    target = testTarget(db.url);
    password = decodeURIComponent(new URL(db.url).password);
    conn = await connectSql(postgresEngine, target);
    for (const sql of schemaSql) await conn.query(sql);
    const load = postgresEngine.roles.schemaDump;
    assert.ok(load, 'postgres has a schemaDump role');
    role = await load();
  });

  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });

  it('dumps tables, indexes and views without owners, privileges, banners or secrets', async () => {
    const schema = await dump();
    assert.match(schema, /CREATE TABLE public\.users \(/);
    assert.match(schema, /CREATE UNIQUE INDEX users_email_idx ON public\.users USING btree \(email\);/);
    assert.match(schema, /CREATE VIEW public\.recent_users AS/);
    assert.doesNotMatch(schema, /Dumped from/);
    assert.doesNotMatch(schema, /Dumped by/);
    assert.doesNotMatch(schema, /^\\(un)?restrict/m);
    assert.doesNotMatch(schema, /OWNER TO/);
    assert.doesNotMatch(schema, /^(GRANT|REVOKE) /m);
    assert.ok(password.length > 0);
    assert.ok(!schema.includes(password), 'the dump does not contain the password');
    assert.ok(schema.endsWith(';\n') || schema.endsWith('--\n'), 'ends with exactly one newline');
    assert.ok(!schema.endsWith('\n\n'));
    assert.doesNotMatch(schema, /\n\n\n\n/);
  });

  it('is byte-identical across two dumps', async () => {
    assert.equal(await dump(), await dump());
  });

  it('ignores PG* variables in the caller environment', async () => {
    const saved = process.env.PGDATABASE;
    process.env.PGDATABASE = 'postgres';
    try {
      assert.match(await dump(), /CREATE TABLE public\.users/);
    } finally {
      if (saved === undefined) delete process.env.PGDATABASE;
      else process.env.PGDATABASE = saved;
    }
  });

  it('fails with E_SCHEMA_DUMP and an install hint when pg_dump is missing', async () => {
    const err = await withPgDump('/nonexistent/pg_dump', () => expectDumpError(() => dump()));
    assert.match(err.message, /pg_dump was not found/);
    assert.match(
      err.hint ?? '',
      /Install the PostgreSQL client \(postgresql-client-\d+\), or pass --no-dump/,
    );
  });

  it('refuses a pg_dump older than the server, naming both versions', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-fake-pgdump-'));
    try {
      const fake = path.join(dir, 'pg_dump');
      writeFileSync(fake, '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n');
      chmodSync(fake, 0o755);
      const err = await withPgDump(fake, () => expectDumpError(() => dump()));
      assert.match(err.message, /pg_dump 9\.6 cannot dump a PostgreSQL \d+ server/);
      assert.match(err.hint ?? '', /postgresql-client-\d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports pg_dump's stderr, without the password, when the dump fails", async () => {
    // A socket directory with no server in it: ?host= must reach pg_dump as PGHOST.
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-nosock-'));
    try {
      const url = new URL(db.url);
      url.searchParams.set('host', dir);
      const err = await expectDumpError(() => dump(url.toString()));
      assert.ok(err.message.includes(dir), `pg_dump used the socket dir: ${err.message}`);
      assert.ok(!err.message.includes(password));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('postgres schema dump (pure)', () => {
  it('puts the password in the environment, never in argv', () => {
    const secret = 'pa$$ w0rd';
    const spec = postgresEngine.parseUrl(
      `postgres://alice:${encodeURIComponent(secret)}@db.example:6543/app?sslmode=verify-full`,
    );
    const { args, env } = pgDumpInvocation(spec, testTarget('postgres://x'));
    assert.deepEqual(args, ['--schema-only', '--no-owner', '--no-privileges']);
    assert.ok(!args.join(' ').includes(secret));
    assert.ok(!args.some((a) => a.includes('alice') || a.includes('db.example')));
    assert.equal(env.PGPASSWORD, secret);
    assert.equal(env.PGHOST, 'db.example');
    assert.equal(env.PGPORT, '6543');
    assert.equal(env.PGUSER, 'alice');
    assert.equal(env.PGDATABASE, 'app');
    assert.equal(env.PGSSLMODE, 'verify-full');
    assert.equal(env.PGCONNECT_TIMEOUT, '10');
  });

  it('uses ?host= as PGHOST and sets no sslmode or password when the URL has none', () => {
    const { env } = pgDumpInvocation(
      postgresEngine.parseUrl('postgres://bob@localhost/app?host=/var/run/pg'),
    );
    assert.equal(env.PGHOST, '/var/run/pg');
    assert.equal(env.PGPORT, '5432');
    assert.equal(env.PGSSLMODE, undefined);
    assert.equal(env.PGPASSWORD, undefined);
  });

  it('parses pg_dump --version output', () => {
    assert.equal(parsePgDumpVersion('pg_dump (PostgreSQL) 15.14 (Debian 15.14-1.pgdg120+1)\n'), 150014);
    assert.equal(parsePgDumpVersion('pg_dump (PostgreSQL) 17.6\n'), 170006);
    assert.equal(parsePgDumpVersion('pg_dump (PostgreSQL) 18beta1\n'), 180000);
    assert.equal(parsePgDumpVersion('pg_dump (PostgreSQL) 9.6.24\n'), 90624);
    assert.equal(parsePgDumpVersion('something else'), undefined);
  });

  it('normalizes banners, restrict keys and blank lines', () => {
    const raw = [
      '--',
      '-- PostgreSQL database dump',
      '--',
      '',
      '\\restrict AbCdEf123',
      '',
      '-- Dumped from database version 15.14',
      '-- Dumped by pg_dump version 17.6',
      '',
      'SET statement_timeout = 0;',
      '',
      '',
      '',
      '',
      '',
      'CREATE TABLE public.t (id int);',
      '',
      '\\unrestrict AbCdEf123',
      '',
      '',
    ].join('\n');
    const out = normalizeDump(raw);
    assert.ok(!out.includes('restrict'));
    assert.ok(!out.includes('Dumped'));
    assert.ok(!/\n\n\n\n/.test(out));
    assert.ok(out.endsWith('CREATE TABLE public.t (id int);\n'));
    assert.ok(out.startsWith('--\n-- PostgreSQL database dump\n'));
    assert.equal(normalizeDump(raw), normalizeDump(raw.replace(/AbCdEf123/g, 'Zz9')));
  });
});
