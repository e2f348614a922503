import { z } from 'zod';

/** A duration in config: milliseconds as a number, or a string such as `10s`, `500ms`, `2m`. */
const duration = z.union([
  z.number().nonnegative(),
  z.string().regex(/^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$/i, 'a duration such as 500ms, 10s or 2m'),
]);

/** Where a target's migrations live and how they are tracked; paths relative to the config file. */
const migrationsBlock = z
  .object({
    dir: z.string().min(1).optional(),
    table: z.string().min(1).optional(),
    /** Where `migrate up/down` writes the schema; false: never. Default: schema.sql beside `dir`. */
    schemaFile: z.union([z.string().min(1), z.literal(false)]).optional(),
  })
  .strict();

const seedsBlock = z
  .object({
    dir: z.string().min(1).optional(),
    table: z.string().min(1).optional(),
  })
  .strict();

/** Doctor settings: threshold overrides (keys in docs/doctor.md) and checks to leave out. */
const doctorBlock = z
  .object({
    thresholds: z.record(z.string(), z.number()).optional(),
    skip: z.array(z.string()).optional(),
  })
  .strict();

/** A count for retention: keep this many backups (or periods). */
const keepCount = z.number().int().nonnegative().optional();

/** Where a notification about a scheduled job goes; `on` says when (default: failure). */
const notifyOn = z.enum(['failure', 'always']).optional();
const notifyChannel = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('webhook'),
      url: z.string().url(),
      headers: z.record(z.string(), z.string()).optional(),
      on: notifyOn,
    })
    .strict(),
  z.object({ type: z.literal('slack'), url: z.string().url(), on: notifyOn }).strict(),
  z
    .object({
      type: z.literal('email'),
      smtp: z
        .object({
          host: z.string().min(1),
          port: z.number().int().positive().optional(),
          secure: z.boolean().optional(),
          user: z.string().optional(),
          password: z.string().optional(),
        })
        .strict(),
      from: z.string().min(1),
      to: z.array(z.string().min(1)).min(1),
      on: notifyOn,
    })
    .strict(),
]);

/**
 * Backup settings (docs/backups.md). A target's block overrides the top-level one key by key;
 * `retention`, `schedule` and `notify` are replaced whole. Paths are relative to the config file.
 */
const backupsBlock = z
  .object({
    /** A directory or `s3://bucket/prefix`. Default `./dbward-backups`. */
    storage: z.string().min(1).optional(),
    /** S3-compatible endpoint settings; credentials come from the AWS environment/profile. */
    s3: z
      .object({
        endpoint: z.string().url().optional(),
        region: z.string().min(1).optional(),
        forcePathStyle: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** The backup key itself — use `${DBWARD_BACKUP_KEY}`-style substitution, not a literal. */
    key: z.string().min(1).optional(),
    /** A file holding the backup key (mode 0600). */
    keyFile: z.string().min(1).optional(),
    /** Encrypt backups. Default: true when a key is configured. true without a key is an error. */
    encrypt: z.boolean().optional(),
    /** zstd level, 1–19. Default 3. */
    compressionLevel: z.number().int().min(1).max(19).optional(),
    /** Parallel dump/restore workers where the engine supports them (PostgreSQL). Default 1. */
    jobs: z.number().int().min(1).max(64).optional(),
    /** Verify every backup right after it is taken (restore into a scratch place). */
    verify: z.boolean().optional(),
    /** Grandfather-father-son retention, applied after a successful backup and by `backups prune`. */
    retention: z
      .object({
        keepLast: keepCount,
        daily: keepCount,
        weekly: keepCount,
        monthly: keepCount,
        yearly: keepCount,
      })
      .strict()
      .optional(),
    /** Cron expressions for `dbward daemon`. */
    schedule: z
      .object({
        backup: z.string().min(1).optional(),
        verify: z.string().min(1).optional(),
        prune: z.string().min(1).optional(),
        /** Further attempts after a failed run (default 2). */
        retries: z.number().int().nonnegative().optional(),
        /** Wait before the first retry, doubling for each further one (default 60s). */
        retryDelay: duration.optional(),
      })
      .strict()
      .optional(),
    /** Where `dbward daemon` reports failures (and, with `on: 'always'`, successes). */
    notify: z.array(notifyChannel).optional(),
  })
  .strict();

export type BackupsConfigBlock = z.output<typeof backupsBlock>;

const targetObject = z
  .object({
    /** Connection URL. `${VAR}` is replaced from the environment (and .env). */
    url: z.string().min(1, 'a database URL'),
    pool: z
      .object({
        max: z.number().int().positive().optional(),
        idleTimeout: duration.optional(),
      })
      .strict()
      .optional(),
    connectTimeout: duration.optional(),
    /** Warn when one connection is held longer than this. */
    leakWarning: duration.optional(),
    /** Passed to the driver as is (e.g. `{ ssl: { rejectUnauthorized: false } }`). */
    driver: z.record(z.string(), z.unknown()).optional(),
    /** Free text shown by `dbward targets`. */
    description: z.string().optional(),
    /** This target's migrations (overrides the top-level `migrations` block). */
    migrations: migrationsBlock.optional(),
    /** This target's seeds (overrides the top-level `seeds` block). */
    seeds: seedsBlock.optional(),
    /** This target's doctor settings (merged over the top-level `doctor` block). */
    doctor: doctorBlock.optional(),
    /** This target's backup settings (over the top-level `backups` block, key by key). */
    backups: backupsBlock.optional(),
  })
  .strict();

/** A target in config: a URL string, or an object with a URL and options. */
export const targetSchema = z.union([z.string().min(1, 'a database URL'), targetObject]);

export const configSchema = z
  .object({
    /** The target commands use when none is named. Defaults to the only target, or `main`. */
    defaultTarget: z.string().optional(),
    /** Defaults for every target's migrations: `{ dir, table, schemaFile }`. */
    migrations: migrationsBlock.optional(),
    /** Defaults for every target's seeds: `{ dir, table }`. */
    seeds: seedsBlock.optional(),
    /** Defaults for every target's doctor: `{ thresholds, skip }`. */
    doctor: doctorBlock.optional(),
    /** Defaults for every target's backups. */
    backups: backupsBlock.optional(),
    targets: z.record(
      z.string().regex(/^[A-Za-z0-9_.-]+$/, 'target names use letters, digits, _ . -'),
      targetSchema,
    ),
  })
  .strict();

/** What users write in dbward.config.ts (before interpolation and defaults). */
export type DbwardConfigInput = z.input<typeof configSchema>;
export type TargetConfigInput = z.input<typeof targetSchema>;
export type TargetObjectInput = z.input<typeof targetObject>;

/**
 * Typed helper for `dbward.config.ts`:
 * `export default defineConfig({ targets: { main: '${DATABASE_URL}' } })`.
 * Environment overrides go under `$production: { … }` / `$env: { staging: { … } }`.
 */
export function defineConfig<T extends DbwardConfigInput & Record<`$${string}`, unknown>>(config: T): T {
  return config;
}
