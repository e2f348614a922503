import { ConfigError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';

/**
 * Replace `${VAR}` and `${VAR:-fallback}` in every string of a config value. A variable that is
 * not set (and has no fallback) is an error naming the key, because a URL with a silently empty
 * password or host fails later in a far more confusing way. `$${` escapes a literal `${`.
 * Variables whose names say they hold secrets are registered for redaction.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, file: string, keyPath = ''): unknown {
  if (typeof value === 'string') return interpolateString(value, env, file, keyPath);
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, file, `${keyPath}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = interpolateEnv(v, env, file, keyPath ? `${keyPath}.${k}` : k);
    }
    return out;
  }
  return value;
}

function interpolateString(text: string, env: NodeJS.ProcessEnv, file: string, keyPath: string): string {
  return text.replace(
    /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (whole, name: string, fallback?: string) => {
      if (whole.startsWith('$$')) return whole.slice(1);
      const value = env[name];
      if (value !== undefined && value !== '') {
        if (/pass|secret|token|key/i.test(name)) registerSecret(value);
        return value;
      }
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${file}: "${keyPath}" uses \${${name}}, but ${name} is not set.`, {
        file,
        key: keyPath,
        hint: `Set ${name} in the environment or in a .env file next to the config, or write \${${name}:-default}.`,
      });
    },
  );
}
