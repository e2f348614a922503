import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { open } from '../../connect/open.js';
import { targetFromInput } from '../../config/load-config.js';
import { ExitCode } from '../../core/exit-codes.js';
import { doctor } from '../../doctor/run-doctor.js';
import { createDemoDatabase, defaultDemoFile } from '../../demo/create-demo-database.js';
import type { CliContext } from '../context.js';
import { formatBytes, paint } from '../output.js';
import { backupTarget, type BackupTargetResult } from '../../backup/backup-target.js';
import { defaultZstdLevel } from '../../backup/zstd-stream.js';
import { LocalStorage } from '../../storage/local-storage.js';
import { renderDoctorReport } from '../render-doctor.js';
import { renderSchema } from '../render-schema.js';

/** Back up the demo database into `dir` and verify the backup. */
async function demoBackup(
  ctx: CliContext,
  url: string,
  dir: string,
): Promise<{ storage: LocalStorage; result: BackupTargetResult }> {
  const storage = new LocalStorage(dir);
  const result = await backupTarget(
    targetFromInput({ name: 'demo', url }),
    {
      storage,
      key: null,
      readKey: null,
      compressionLevel: defaultZstdLevel,
      jobs: 1,
      verify: true,
      retention: {},
    },
    { logger: ctx.logger },
  );
  return { storage, result };
}

/** `dbward demo`: make a small SQLite shop database, show what dbward sees in it, and back it up. */
export async function demoCommand(ctx: CliContext, flags: { file?: string }): Promise<number> {
  const file = flags.file ?? defaultDemoFile;
  const started = performance.now();
  const demo = await createDemoDatabase(file);
  const { url } = demo;
  const project = path.relative(process.cwd(), demo.projectDir) || demo.projectDir;
  ctx.out.note(
    `created demo database ${path.resolve(file)} in ${Math.round(performance.now() - started)} ms: ` +
      `${demo.migrations.migrations.length} migrations applied and ` +
      `${demo.seeds.seeds.filter((s) => s.action !== 'skip').length} seeds run from ${project}/`,
  );
  for (const m of demo.migrations.migrations) {
    ctx.out.note(paint(ctx.out, 'dim', `  applied ${m.version}_${m.name} (${m.durationMs} ms)`));
  }
  for (const s of demo.seeds.seeds) {
    ctx.out.note(paint(ctx.out, 'dim', `  seeded ${s.id} (${s.durationMs ?? 0} ms)`));
  }
  const db = await open({ name: 'demo', url }, { logger: ctx.logger });
  try {
    const inspectStarted = performance.now();
    const model = await db.inspect();
    const inspectMs = performance.now() - inspectStarted;
    // The demo ends with what doctor finds in it (the shop has one foreign key without an index).
    const health = await doctor(db, targetFromInput({ name: 'demo', url }));
    // …and a backup, verified by restoring it into a scratch copy, as `dbward backup --verify` does.
    const backup = await demoBackup(ctx, url, path.join(demo.projectDir, 'backups'));
    const listed = await backup.storage.list('demo');
    if (ctx.out.json) {
      ctx.out.printJson({
        url,
        project: demo.projectDir,
        migrations: demo.migrations.migrations,
        seeds: demo.seeds.seeds,
        schema: model,
        doctor: health,
        backup: backup.result.manifest,
        backups: listed.backups,
      });
      return ExitCode.ok;
    }
    ctx.out.line(renderSchema(ctx.out, model, { detail: false, elapsedMs: inspectMs }));
    ctx.out.line();
    ctx.out.line(paint(ctx.out, 'bold', 'Doctor:'));
    ctx.out.line(renderDoctorReport(ctx.out, [health]));
    ctx.out.line();
    ctx.out.line(paint(ctx.out, 'bold', 'Backup:'));
    const m = backup.result.manifest;
    ctx.out.line(
      `  ${m.id}: ${m.tables.length} tables, ${formatBytes(m.rawBytes)} → ${formatBytes(m.storedBytes)} (zstd), ` +
        `${backup.result.verification?.ok ? 'verified: ' : 'verification FAILED: '}${backup.result.verification?.details.at(-1) ?? ''}`,
    );
    ctx.out.line(
      `  ${listed.backups.length} backup(s) in ${path.relative(process.cwd(), backup.storage.location)}`,
    );
    ctx.out.line();
    ctx.out.line(paint(ctx.out, 'bold', 'Next:'));
    ctx.out.line(
      `  npx dbward migrate status --url sqlite:${file} --migrations-dir ${project}/migrations    the applied migrations`,
    );
    ctx.out.line(`  npx dbward inspect --url sqlite:${file} --detail    every column, index and foreign key`);
    const backups = path.relative(process.cwd(), backup.storage.location);
    ctx.out.line(`  npx dbward backups list --storage ${backups}    the demo's backups`);
    ctx.out.line(
      `  npx dbward restore ${m.id} --storage ${backups} --to-url sqlite:restored.db --create    restore it`,
    );
    ctx.out.line(`  npx dbward inspect --url sqlite:${file} --json      the same as data`);
    ctx.out.line(
      `  npx dbward doctor --url sqlite:${file}              health checks, with the fix for each`,
    );
    ctx.out.line(
      `  DATABASE_URL=sqlite:${file} npx dbward ping           or point dbward at your own database`,
    );
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}
