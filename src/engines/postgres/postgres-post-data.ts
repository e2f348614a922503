/**
 * Which post-data entries of a dump (indexes, constraints, foreign keys, triggers, …) may be built
 * as soon as one table's data is in, while other tables still load — as `pg_restore -j` does on a
 * file, where a small table's indexes are built on a core the big tables' load leaves idle.
 *
 * Only an INDEX or a (primary key, unique, check, exclusion) CONSTRAINT on one table that has its
 * own data entry qualifies: it reads nothing but that table. Foreign keys (they read the table they
 * point at), triggers, rules, policies, partition attachments, materialized view data and anything
 * this cannot tie to a table wait for the final `-j N` step, where pg_restore orders them itself.
 *
 * The table an entry belongs to is read from the entry's SQL (`pg_restore -f - --section=post-data`
 * of the table-of-contents file): `CREATE INDEX … ON schema.table` and `ALTER TABLE ONLY
 * schema.table ADD CONSTRAINT …`, identifiers quoted as PostgreSQL quotes them. An entry's header
 * (`-- Name: …; Type: …; Schema: …; Owner: …`) is matched with its `pg_restore --list` line.
 */

/** Post-data TOC lines that can be built early, by the table (`schema table`, unquoted) they read. */
export type EarlyEntries = Map<string, string[]>;

const ident = String.raw`(?:"(?:[^"]|"")*"|[^\s."(]+)`;
const qualified = new RegExp(String.raw`^(${ident})\.(${ident})`);
const header = /^-- Name: (.*); Type: (.*); Schema: (.*); Owner: .*$/;

/**
 * `list`: `pg_restore --list --section=post-data` of the archive; `sql`: `pg_restore -f -
 * --section=post-data` of the same archive (with the same filters, so the same entries).
 */
export function earlyPostData(list: string, sql: string): EarlyEntries {
  const tableOf = new Map<string, string>(); // `${type} ${schema} ${name}` → `schema table`
  const lines = sql.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = header.exec(lines[i]!);
    if (!match) continue;
    const [, name, type, schema] = match;
    if (type !== 'INDEX' && type !== 'CONSTRAINT') continue;
    const statement =
      lines.slice(i + 1, i + 8).find((l) => l !== '' && l !== '--' && !l.startsWith('SET ')) ?? '';
    const table = tableIn(type, statement.trim());
    if (table) tableOf.set(`${type} ${schema} ${name}`, table);
  }
  const early: EarlyEntries = new Map();
  for (const line of list.split('\n')) {
    const rest = /^\d+; \d+ \d+ (.*) \S+$/.exec(line)?.[1];
    const table = rest === undefined ? undefined : tableOf.get(rest);
    if (!table) continue;
    const entries = early.get(table) ?? [];
    entries.push(line);
    early.set(table, entries);
  }
  return early;
}

/** `schema table` of `CREATE [UNIQUE] INDEX name ON [ONLY] s.t …` or `ALTER TABLE ONLY s.t`. */
function tableIn(type: string, statement: string): string | undefined {
  const target =
    type === 'INDEX'
      ? /^CREATE (?:UNIQUE )?INDEX (?:CONCURRENTLY )?(?:"(?:[^"]|"")*"|\S+) ON (ONLY )?(.*)$/.exec(statement)
      : /^ALTER TABLE (ONLY )?(.*)$/.exec(statement);
  // ON ONLY: an index of a partitioned table, attached to its partitions' indexes later.
  if (!target || (type === 'INDEX' && target[1])) return undefined;
  const names = qualified.exec(target[2]!);
  if (!names) return undefined;
  return `${unquote(names[1]!)} ${unquote(names[2]!)}`;
}

function unquote(name: string): string {
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/** `schema table` of a `TABLE DATA` TOC line; undefined for other entries. */
export function dataTableOf(line: string): string | undefined {
  return /^\d+; \d+ \d+ TABLE DATA (.*) \S+$/.exec(line)?.[1];
}
