/**
 * `dbward doctor` as users run it: the grouped report, --json, --fail-on, --only/--skip, config
 * thresholds, and a target that cannot be reached while another one is examined.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { closedPort } from '../helpers/engine-connect.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  target: string;
  engine: string;
  findings: {
    id: string;
    severity: string;
    title: string;
    evidence: string[];
    why: string;
    fix: string | null;
  }[];
  skipped: { id: string }[];
  error?: { code: string; message: string };
}

/** A project folder with a SQLite database holding a table without a primary key. */
async function project(config?: object): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-doctor-cli-'));
  const { Database } = await loadSqliteDriver();
  const db = new Database(path.join(dir, 'app.db'));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE events (at TEXT, what TEXT)');
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)');
  db.exec('ANALYZE');
  db.close();
  if (config) writeFileSync(path.join(dir, 'dbward.config.json'), JSON.stringify(config));
  return dir;
}

describe('dbward doctor', () => {
  it('reports a planted problem with evidence and fix; --fail-on decides the exit code', async () => {
    const dir = await project();
    const env = { DATABASE_URL: `sqlite:${path.join(dir, 'app.db')}` };
    const text = await runCli(['doctor', '--no-color'], { cwd: dir, env });
    // Default --fail-on critical: a warning alone exits 0.
    assert.equal(text.code, 0, text.all);
    assert.match(text.stdout, /WARNING\s+1 table\(s\) without a primary key\s+tables\.no-primary-key/);
    assert.match(text.stdout, /events/);
    assert.match(text.stdout, /fix: ALTER TABLE/);
    assert.match(text.stdout, /check\(s\) passed/);

    const strict = await runCli(['doctor', '--fail-on', 'warn'], { cwd: dir, env });
    assert.equal(strict.code, 1, strict.all);

    const json = await runCli(['doctor', '--json'], { cwd: dir, env });
    const [report] = JSON.parse(json.stdout) as Report[];
    const pk = report!.findings.find((f) => f.id === 'tables.no-primary-key')!;
    assert.equal(pk.severity, 'warning');
    assert.deepEqual(Object.keys(pk).sort(), ['evidence', 'fix', 'id', 'severity', 'title', 'why']);
    // Worst first.
    assert.notEqual(report!.findings[0]!.severity, 'ok');
  });

  it('--only and --skip select checks; an unknown id is a usage error before connecting', async () => {
    const dir = await project();
    const env = { DATABASE_URL: `sqlite:${path.join(dir, 'app.db')}` };
    const only = JSON.parse(
      (await runCli(['doctor', '--json', '--only', 'indexes.'], { cwd: dir, env })).stdout,
    ) as Report[];
    assert.ok(only[0]!.findings.length > 0);
    assert.ok(only[0]!.findings.every((f) => f.id.startsWith('indexes.')));
    const skip = JSON.parse(
      (await runCli(['doctor', '--json', '--skip', 'tables.no-primary-key'], { cwd: dir, env })).stdout,
    ) as Report[];
    assert.ok(!skip[0]!.findings.some((f) => f.id === 'tables.no-primary-key'));
    const bad = await runCli(['doctor', '--only', 'tables.nope'], {
      cwd: dir,
      env: { DATABASE_URL: 'postgres://x@127.0.0.1:1/x' },
    });
    assert.equal(bad.code, 2, bad.all);
    assert.match(bad.stderr, /No doctor check is called "tables\.nope"/);
  });

  it('an unreachable target yields its diagnosis while the others are examined; exit 3', async () => {
    const port = await closedPort();
    const dir = await project({
      targets: {
        app: 'sqlite:app.db',
        down: `postgres://app:s3cret-pw@127.0.0.1:${port}/app`,
      },
      doctor: { skip: ['tables.no-primary-key'] },
    });
    const run = await runCli(['doctor', '--all', '--json'], { cwd: dir });
    assert.equal(run.code, 3, run.all);
    assert.doesNotMatch(run.all, /s3cret-pw/);
    const reports = JSON.parse(run.stdout) as Report[];
    assert.deepEqual(
      reports.map((r) => r.target),
      ['app', 'down'],
    );
    const down = reports[1]!;
    assert.equal(down.findings[0]!.id, 'server.reachable');
    assert.equal(down.findings[0]!.severity, 'critical');
    assert.match(down.error!.message, /refused|connect/i);
    // The config's doctor.skip applies to every target.
    assert.ok(!reports[0]!.findings.some((f) => f.id === 'tables.no-primary-key'));
    assert.ok(reports[0]!.findings.length > 0);
  });

  it('config thresholds override the defaults, and an unknown one is refused', async () => {
    const dir = await project({ targets: { app: 'sqlite:app.db' }, doctor: { thresholds: { 'nope.x': 1 } } });
    const run = await runCli(['doctor'], { cwd: dir });
    assert.equal(run.code, 2, run.all);
    assert.match(run.stderr, /Unknown doctor threshold "nope\.x"/);
  });
});
