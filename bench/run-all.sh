#!/usr/bin/env bash
# Runs every benchmark in bench/ (`npm run bench`) and prints a summary table at the end.
#
#   cli-startup        dbward --version vs node -e 0              target ≤ 3× node -e 0
#   inspect-postgres   dbward inspect vs pg_dump --schema-only    target ≤ 1.5 s (5,000 tables, 15,000 indexes)
#   inspect-sqlite     dbward inspect vs sqlite3 .schema          target ≤ 0.5 s (500 tables)
#   migrate-postgres   dbward migrate up / status vs dbmate       target up ≤ 1.5× dbmate (1,000 migrations),
#                                                                  status ≤ 0.5 s (5,000 applied)
#   doctor-postgres    dbward doctor vs psql running PgHero's SQL  target ≤ 3 s (5,000 tables, 15,000 indexes)
#   backup-postgres    dbward backup / restore vs pg_dump -Fc / pg_restore  target ≤ 0.3× time, ≤ 0.9× size; restore ≤ 1.05× (1.6 GB)
#   backup-mariadb     dbward backup / restore vs mariadb-dump | gzip / gunzip | mariadb  target ≤ 0.4×; restore ≤ 1.05× (1.6 GB)
#
# Builds dist/ first when it is missing or older than src/. Benchmarks report, they do not gate:
# a missed target prints FAIL and still exits 0; the exit code is non-zero only when a benchmark
# could not run (a missing tool, a server that would not start). Needs hyperfine, GNU time and
# sqlite3 (sudo bash scripts/install-deps.sh --bench) and PostgreSQL (scripts/install-deps.sh);
# migrate-postgres also needs dbmate (npm install --prefix /tmp/dbward-bench-dbmate dbmate, or DBMATE_BIN).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -f dist/cli/main.js ]] || [[ -n $(find src -newer dist/cli/main.js -print -quit) ]]; then
  echo "run-all: building dist/"
  npx tsc -p tsconfig.build.json || exit 1
fi

summary=$(mktemp "${TMPDIR:-/tmp}/dbward-bench-summary.XXXXXX")
trap 'rm -f "$summary"' EXIT
export BENCH_SUMMARY_FILE=$summary

failed=()
for bench in cli-startup inspect-postgres inspect-sqlite migrate-postgres doctor-postgres backup-postgres backup-mariadb; do
  echo "======== $bench ========"
  if ! node --import tsx "bench/$bench.ts"; then
    failed+=("$bench")
  fi
done

echo "======== summary ========"
node - "$summary" "${failed[@]}" <<'EOF'
const [file, ...failed] = process.argv.slice(2);
const rows = require('fs').readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const time = (s, unit = s) => (unit < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(3)} s`);
const mib = (kb) => `${(kb / 1024).toFixed(1)} MiB`;
const table = [['benchmark', 'dbward mean', 'compared with', 'its mean', 'ratio', 'dbward RSS', 'its RSS', 'target', 'result']];
for (const r of rows) {
  table.push([r.benchmark, `${time(r.mean)} ± ${time(r.stddev, r.mean)}`, r.reference, time(r.referenceMean), `${r.ratio.toFixed(2)}×`,
    mib(r.peakRssKb), mib(r.referencePeakRssKb), r.target.replace(/ \(measured.*\)$/, ''), r.pass ? 'PASS' : 'FAIL']);
}
for (const b of failed) table.push([b, '-', '-', '-', '-', '-', '-', '-', 'DID NOT RUN']);
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
EOF

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run-all: could not run: ${failed[*]}" >&2
  exit 1
fi
