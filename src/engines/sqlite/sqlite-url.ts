import path from 'node:path';
import type { ConnectionSpec } from '../../core/connection-spec.js';

/**
 * SQLite locations, in the forms other tools use so URLs can be copied over:
 * `sqlite:db/app.db` (dbmate), `sqlite:///abs/app.db`, `sqlite://./rel.db`, `file:./dev.db`
 * (Prisma), a bare path (`./app.db`, `/var/app.sqlite3`) and `:memory:`.
 * Query parameters (e.g. `?mode=ro`) are kept in `params`.
 */
export function parseSqliteUrl(url: string): ConnectionSpec {
  const [location = '', query = ''] = splitOnce(url, '?');
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) params[k] = v;
  let file = location;
  const scheme = /^(sqlite3?|file):/i.exec(location)?.[1]?.toLowerCase();
  if (scheme) {
    file = location.slice(scheme.length + 1);
    // sqlite:///abs -> /abs ; sqlite://./rel -> ./rel ; sqlite://rel -> rel
    if (file.startsWith('//')) file = file.slice(2);
  }
  if (file === '' || file === ':memory:' || file === '/:memory:') {
    return { scheme: 'sqlite', file: ':memory:', params };
  }
  file = decodeURIComponent(file);
  return { scheme: 'sqlite', file: path.resolve(file), params };
}

/** True for strings that look like a SQLite location rather than a network URL. */
export function looksLikeSqliteLocation(url: string): boolean {
  if (url === ':memory:') return true;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return false;
  return /\.(db|sqlite|sqlite3|db3)(\?.*)?$/i.test(url) || url.startsWith('./') || url.startsWith('/');
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i === -1 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}
