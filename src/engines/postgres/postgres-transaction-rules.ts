/**
 * Which PostgreSQL statements cannot run inside a transaction block, found with PostgreSQL's own
 * parser (libpg-query: the server's grammar compiled to WASM), so a section holding one runs
 * statement by statement outside a transaction without a `transaction:false` marker. Parsing
 * rather than matching text means a `$$` function body, a string or a comment that merely
 * contains `CREATE INDEX CONCURRENTLY` does not count.
 *
 * The rules follow the PostgreSQL documentation, where each command's page says it "cannot be
 * executed inside a transaction block" (CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER
 * SYSTEM, VACUUM, CLUSTER without a table, REINDEX, CREATE/DROP INDEX CONCURRENTLY, ALTER TABLE
 * … DETACH PARTITION … CONCURRENTLY, CREATE/ALTER/DROP SUBSCRIPTION, DISCARD ALL, COMMIT/ROLLBACK
 * PREPARED), and the server's PreventInTransactionBlock() calls in src/backend (utility.c,
 * vacuum.c, cluster.c, indexcmds.c, dbcommands.c, subscriptioncmds.c, discard.c), which also
 * give ALTER DATABASE … SET TABLESPACE. Cases that depend on the catalog (REINDEX or CLUSTER of a
 * partitioned table, DROP SUBSCRIPTION of a subscription without a slot, a procedure that
 * commits) cannot be told from the text: the rules err towards running outside a transaction
 * where the text allows both, and otherwise `transaction:false` remains.
 */
import type * as LibPgQuery from 'libpg-query';
import type { AlterSubscriptionStmt, DefElem, Node, ParseResult } from 'libpg-query';

let parser: Promise<typeof LibPgQuery> | undefined;

/** The parser module, imported on first use (with its WASM, ~50–75 ms) and kept for the process. */
async function loadParser(): Promise<typeof LibPgQuery> {
  parser ??= (async () => {
    const module = await import('libpg-query');
    await module.loadModule();
    return module;
  })();
  try {
    return await parser;
  } catch (err) {
    parser = undefined; // not cached: the next call tries again
    throw err;
  }
}

/**
 * Every rule below needs one of these words in the statement, and a keyword cannot be quoted or
 * escaped, so SQL without any of them (most migrations, and large data loads) skips the parser.
 */
const keywords =
  /concurrently|vacuum|cluster|reindex|database|tablespace|\bsystem\b|\bvalue\b|subscription|discard|prepared/i;

/**
 * The first statement in `sql` that cannot run inside a transaction block, named for messages
 * (e.g. `CREATE INDEX CONCURRENTLY`), or null. SQL the parser rejects yields null: the server
 * reports the error, with its position, when the section runs.
 */
export async function nonTransactionalStatement(sql: string): Promise<string | null> {
  if (!keywords.test(sql)) return null;
  const { parse } = await loadParser();
  let parsed: ParseResult;
  try {
    parsed = await parse(sql);
  } catch {
    return null;
  }
  for (const { stmt } of parsed.stmts ?? []) {
    const name = stmt ? refusesTransaction(stmt) : null;
    if (name) return name;
  }
  return null;
}

/** The rule for one parsed statement: its name when it refuses a transaction block, else null. */
function refusesTransaction(node: Node): string | null {
  if ('IndexStmt' in node) return node.IndexStmt.concurrent ? 'CREATE INDEX CONCURRENTLY' : null;
  if ('DropStmt' in node) return node.DropStmt.concurrent ? 'DROP INDEX CONCURRENTLY' : null;
  if ('ReindexStmt' in node) {
    const { kind, params } = node.ReindexStmt;
    if (kind === 'REINDEX_OBJECT_SYSTEM') return 'REINDEX SYSTEM';
    if (kind === 'REINDEX_OBJECT_DATABASE') return 'REINDEX DATABASE';
    if (kind === 'REINDEX_OBJECT_SCHEMA') return 'REINDEX SCHEMA';
    return optionValue(params, 'concurrently') === true ? 'REINDEX CONCURRENTLY' : null;
  }
  // VACUUM, VACUUM ANALYZE and VACUUM (ANALYZE); a plain ANALYZE is the same node without the flag.
  if ('VacuumStmt' in node) return node.VacuumStmt.is_vacuumcmd ? 'VACUUM' : null;
  // CLUSTER without a table reclusters every table, committing after each.
  if ('ClusterStmt' in node) return node.ClusterStmt.relation ? null : 'CLUSTER';
  if ('CreatedbStmt' in node) return 'CREATE DATABASE';
  if ('DropdbStmt' in node) return 'DROP DATABASE';
  if ('AlterDatabaseStmt' in node) {
    return findOption(node.AlterDatabaseStmt.options, 'tablespace')
      ? 'ALTER DATABASE ... SET TABLESPACE'
      : null;
  }
  if ('CreateTableSpaceStmt' in node) return 'CREATE TABLESPACE';
  if ('DropTableSpaceStmt' in node) return 'DROP TABLESPACE';
  if ('AlterSystemStmt' in node) return 'ALTER SYSTEM';
  // ADD VALUE (no oldVal; RENAME VALUE has one). Since PostgreSQL 12 it is allowed in a
  // transaction block, but the new value cannot be used until that transaction commits
  // ("unsafe use of new value"), so `ADD VALUE 'x'; INSERT … 'x'` in one transaction fails.
  // Run outside one, each statement commits before the next uses the value.
  if ('AlterEnumStmt' in node) {
    const { newVal, oldVal } = node.AlterEnumStmt;
    return newVal !== undefined && oldVal === undefined ? 'ALTER TYPE ... ADD VALUE' : null;
  }
  if ('AlterTableStmt' in node) {
    const detaching = (node.AlterTableStmt.cmds ?? []).some(
      (cmd) =>
        'AlterTableCmd' in cmd &&
        cmd.AlterTableCmd.subtype === 'AT_DetachPartition' &&
        cmd.AlterTableCmd.def !== undefined &&
        'PartitionCmd' in cmd.AlterTableCmd.def &&
        cmd.AlterTableCmd.def.PartitionCmd.concurrent === true,
    );
    return detaching ? 'ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY' : null;
  }
  if ('CreateSubscriptionStmt' in node) {
    // It creates a replication slot on the publisher, which a rollback cannot undo; create_slot
    // defaults to the value of connect, which defaults to true.
    const { options } = node.CreateSubscriptionStmt;
    const createSlot = optionValue(options, 'create_slot') ?? optionValue(options, 'connect') ?? true;
    return createSlot ? 'CREATE SUBSCRIPTION' : null;
  }
  // Refused when the subscription has a replication slot, which only the catalog knows.
  if ('DropSubscriptionStmt' in node) return 'DROP SUBSCRIPTION';
  if ('AlterSubscriptionStmt' in node) return alterSubscription(node.AlterSubscriptionStmt);
  if ('DiscardStmt' in node) return node.DiscardStmt.target === 'DISCARD_ALL' ? 'DISCARD ALL' : null;
  if ('TransactionStmt' in node) {
    const { kind } = node.TransactionStmt;
    if (kind === 'TRANS_STMT_COMMIT_PREPARED') return 'COMMIT PREPARED';
    if (kind === 'TRANS_STMT_ROLLBACK_PREPARED') return 'ROLLBACK PREPARED';
  }
  return null;
}

/**
 * REFRESH PUBLICATION; SET/ADD/DROP PUBLICATION unless `refresh = false`; SET (failover) and
 * SET (two_phase), which change the slot on the publisher.
 */
function alterSubscription(stmt: AlterSubscriptionStmt): string | null {
  switch (stmt.kind) {
    case 'ALTER_SUBSCRIPTION_REFRESH':
      return 'ALTER SUBSCRIPTION ... REFRESH PUBLICATION';
    case 'ALTER_SUBSCRIPTION_SET_PUBLICATION':
    case 'ALTER_SUBSCRIPTION_ADD_PUBLICATION':
    case 'ALTER_SUBSCRIPTION_DROP_PUBLICATION':
      return (optionValue(stmt.options, 'refresh') ?? true)
        ? 'ALTER SUBSCRIPTION ... PUBLICATION (refresh)'
        : null;
    case 'ALTER_SUBSCRIPTION_OPTIONS':
      if (findOption(stmt.options, 'failover')) return 'ALTER SUBSCRIPTION ... SET (failover)';
      if (findOption(stmt.options, 'two_phase')) return 'ALTER SUBSCRIPTION ... SET (two_phase)';
      return null;
    default:
      return null;
  }
}

function findOption(options: Node[] | undefined, name: string): DefElem | undefined {
  for (const option of options ?? []) {
    if ('DefElem' in option && option.DefElem.defname === name) return option.DefElem;
  }
  return undefined;
}

/**
 * A boolean option as the server reads it (defGetBoolean): no value means true; then 1/0 and
 * true/false/on/off. Undefined when the option is absent. A value the server rejects counts as
 * true, the side that runs outside a transaction.
 */
function optionValue(options: Node[] | undefined, name: string): boolean | undefined {
  const option = findOption(options, name);
  if (!option) return undefined;
  const { arg } = option;
  if (!arg) return true;
  if ('Boolean' in arg) return arg.Boolean.boolval === true;
  if ('Integer' in arg) return (arg.Integer.ival ?? 0) !== 0;
  let word: string | undefined;
  if ('String' in arg) word = arg.String.sval;
  else if ('TypeName' in arg) {
    // An unquoted `off` arrives as a type name.
    const names = arg.TypeName.names ?? [];
    const only = names.length === 1 ? names[0] : undefined;
    if (only && 'String' in only) word = only.String.sval;
  }
  const lower = word?.toLowerCase();
  return !(lower === 'false' || lower === 'off');
}
