/**
 * A target's backup settings in force: config (`backups: {…}`, the target's own block over the
 * top-level one) with command-line flags winning. The key is looked up in this order, first match
 * wins: `--key-file`, `DBWARD_BACKUP_KEY`, the config's `keyFile`, the config's `key`.
 */
import { ConfigError } from '../core/errors.js';
import type { BackupSettings, Target } from '../core/target.js';
import { openStorage } from '../storage/open-storage.js';
import { defaultStorageSpec, type BackupStorage } from '../storage/storage.js';
import { BACKUP_KEY_ENV, loadBackupKey, type BackupKey } from './backup-key.js';
import { defaultZstdLevel } from './zstd-stream.js';

export interface BackupFlags {
  storage?: string;
  keyFile?: string;
  /** false: `--no-encrypt`. */
  encrypt?: boolean;
  level?: number;
  jobs?: number;
}

export interface ResolvedBackupSettings {
  storage: BackupStorage;
  /** The key backups are encrypted with and read with; null when none is configured or --no-encrypt. */
  key: BackupKey | null;
  /** The key for reading (verify, restore): configured even when new backups are not encrypted. */
  readKey: BackupKey | null;
  compressionLevel: number;
  jobs: number;
  verify: boolean;
  retention: NonNullable<BackupSettings['retention']>;
}

export function resolveBackupSettings(
  target: Target,
  flags: BackupFlags = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedBackupSettings {
  const config = target.backups ?? {};
  const storage = openStorage(flags.storage ?? config.storage ?? defaultStorageSpec, {
    ...(config.s3 ? { s3: config.s3 } : {}),
  });
  const readKey = loadKey(config, flags, env);
  const encrypt = flags.encrypt ?? config.encrypt;
  if (encrypt === true && readKey === null) {
    throw new ConfigError(
      `Backups of ${target.name} must be encrypted (backups.encrypt), but no key is configured.`,
      {
        hint: `Set ${BACKUP_KEY_ENV}, pass --key-file, or set backups.keyFile; \`dbward backup keygen\` makes a key.`,
      },
    );
  }
  return {
    storage,
    key: encrypt === false ? null : readKey,
    readKey,
    compressionLevel: flags.level ?? config.compressionLevel ?? defaultZstdLevel,
    jobs: flags.jobs ?? config.jobs ?? 1,
    verify: config.verify ?? false,
    retention: config.retention ?? {},
  };
}

function loadKey(
  config: BackupSettings,
  flags: BackupFlags,
  env: Record<string, string | undefined>,
): BackupKey | null {
  if (flags.keyFile !== undefined) return loadBackupKey({ keyFile: flags.keyFile, env });
  const fromEnv = env[BACKUP_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return loadBackupKey({ env });
  if (config.keyFile !== undefined) return loadBackupKey({ keyFile: config.keyFile, env: {} });
  if (config.key !== undefined) {
    return loadBackupKey({ configKey: config.key, configKeyName: 'backups.key', env: {} });
  }
  return null;
}
