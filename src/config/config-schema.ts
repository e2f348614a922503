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
