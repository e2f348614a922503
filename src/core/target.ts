/**
 * A target is one named database dbward watches: its URL (which may hold a password and so is
 * never printed as is) and the options that shape its connections.
 */
export interface PoolOptions {
  /** Most connections open at once. Default 10 (SQLite: 1 writer). */
  max: number;
  /** Close connections idle longer than this. Default 30 s. */
  idleTimeoutMs: number;
}

export interface TargetOptions {
  pool: PoolOptions;
  /** Give up a connection attempt after this long. Default 10 s. */
  connectTimeoutMs: number;
  /** Warn when one connection is held longer than this (a likely leak). Default 60 s. */
  leakWarningMs: number;
  /** Extra driver options passed through to the engine, e.g. `{ ssl: … }` for PostgreSQL. */
  driver: Record<string, unknown>;
}

export interface Target {
  /** The name in config (`main` when the URL came from DATABASE_URL or --url). */
  name: string;
  /** The connection URL, with secrets. Never print it: use {@link displayUrl}. */
  url: string;
  /** The URL with the password redacted. */
  displayUrl: string;
  options: TargetOptions;
  /**
   * Where this target's migrations live and how they are tracked (config `migrations: {…}`).
   * Paths are absolute (config-relative paths are resolved against the config file's folder).
   * Command-line flags win over these; unset means the defaults (`migrations/`, `dbward_migrations`,
   * `schema.sql` beside the migrations folder).
   */
  migrations?: {
    dir?: string;
    table?: string;
    /** false: never write a schema file. */
    schemaFile?: string | false;
  };
  /** Where this target's seeds live (config `seeds: { dir }`), absolute; default `seeds/`. */
  seeds?: { dir?: string; table?: string };
  /** Doctor settings (config `doctor: { thresholds, skip }`): threshold overrides, checks to leave out. */
  doctor?: { thresholds?: Record<string, number>; skip?: string[] };
  /**
   * Backup settings (config `backups: {…}`, the target's own over the top-level block), with
   * `storage` and `keyFile` made absolute (an `s3://` storage stays as written).
   */
  backups?: BackupSettings;
}

export interface BackupNotifyChannelSettings {
  type: 'webhook' | 'slack' | 'email';
  on?: 'failure' | 'always';
  [key: string]: unknown;
}

export interface BackupSettings {
  storage?: string;
  s3?: { endpoint?: string; region?: string; forcePathStyle?: boolean };
  key?: string;
  keyFile?: string;
  encrypt?: boolean;
  compressionLevel?: number;
  jobs?: number;
  verify?: boolean;
  retention?: { keepLast?: number; daily?: number; weekly?: number; monthly?: number; yearly?: number };
  schedule?: {
    backup?: string;
    verify?: string;
    prune?: string;
    retries?: number;
    retryDelay?: number | string;
  };
  notify?: BackupNotifyChannelSettings[];
}

export const defaultTargetOptions: TargetOptions = {
  pool: { max: 10, idleTimeoutMs: 30_000 },
  connectTimeoutMs: 10_000,
  leakWarningMs: 60_000,
  driver: {},
};
