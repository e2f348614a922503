#!/usr/bin/env bash
# Installs the database servers and tools dbward's tests start and use, from the distro's packages:
# PostgreSQL (+ contrib, + hypopg for the same major version), MariaDB server and client, Redis and
# zstd. Idempotent: installs only what `dpkg` says is missing, and runs `apt-get update` at most once.
#
# It does not start or enable the system services (the test harness runs its own throwaway
# servers); where it installs something, a temporary policy-rc.d keeps the packages' scripts from
# starting them. Services that are already running are left alone.
#
# With --bench it also installs what the benchmarks in bench/ run (`npm run bench`): hyperfine,
# GNU time and the sqlite3 shell. Without it, nothing of that group is touched.
#
# Not root, or no apt-get: prints what to install and exits 0.
set -euo pipefail

base_packages=(postgresql postgresql-contrib mariadb-server mariadb-client redis-server zstd)
bench_packages=(hyperfine time sqlite3)

with_bench=0
for arg in "$@"; do
  case $arg in
    --bench) with_bench=1 ;;
    *)
      echo "usage: install-deps.sh [--bench]" >&2
      exit 2
      ;;
  esac
done

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Newest PostgreSQL major version installed under /usr/lib/postgresql, if any.
pg_major() {
  local dir
  dir=$(ls -1 /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n 1 || true)
  printf '%s' "$dir"
}

missing_of() {
  local p
  for p in "$@"; do
    is_installed "$p" || printf '%s\n' "$p"
  done
}

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not root on a Debian/Ubuntu system; nothing installed. dbward's tests need:"
  echo "  PostgreSQL (initdb, postgres) with contrib (pg_stat_statements) and hypopg, e.g. postgresql-15 postgresql-15-hypopg"
  echo "  MariaDB (mariadb-install-db, mariadbd, mariadb), e.g. mariadb-server mariadb-client"
  echo "  Redis (redis-server) and zstd"
  echo "  and for the benchmarks (npm run bench): hyperfine, GNU time (/usr/bin/time), sqlite3"
  echo "  or point the tests at running servers with DBWARD_TEST_POSTGRES_URL, DBWARD_TEST_MYSQL_URL, DBWARD_TEST_REDIS_URL"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
installed=()
policy_created=0

cleanup() {
  if [[ $policy_created -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

install_packages() {
  [[ $# -gt 0 ]] || return 0
  if [[ $updated -eq 0 ]]; then
    echo "install-deps: apt-get update"
    apt-get update -qq
    updated=1
  fi
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # Exit code 101 = "action not allowed": invoke-rc.d then starts no service.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  echo "install-deps: apt-get install $*"
  apt-get install -y -qq --no-install-recommends "$@"
  installed+=("$@")
}

mapfile -t missing < <(missing_of "${base_packages[@]}")
install_packages "${missing[@]}"

# hypopg must match the server's major version, which we only know once PostgreSQL is installed.
major=$(pg_major)
if [[ -z $major ]]; then
  echo "install-deps: PostgreSQL is not installed under /usr/lib/postgresql after installing it" >&2
  exit 1
fi
mapfile -t missing < <(missing_of "postgresql-$major" "postgresql-$major-hypopg")
install_packages "${missing[@]}"

all=("${base_packages[@]}" "postgresql-$major" "postgresql-$major-hypopg")
if [[ $with_bench -eq 1 ]]; then
  mapfile -t missing < <(missing_of "${bench_packages[@]}")
  install_packages "${missing[@]}"
  all+=("${bench_packages[@]}")
fi
if [[ $with_bench -eq 1 ]]; then
  # dbmate, the tool bench/migrate-postgres.ts compares against. It lives outside the project's
  # lockfile: the npm package pulls in per-platform binaries, and a lockfile listing them all
  # breaks `npm ci` wherever a registry lacks one platform's package.
  dbmate_prefix="${TMPDIR:-/tmp}/dbward-bench-dbmate"
  if [[ ! -d $dbmate_prefix/node_modules/dbmate ]]; then
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$dbmate_prefix" dbmate@2 >/dev/null
    installed+=("dbmate (npm, in $dbmate_prefix)")
  fi
  all+=("dbmate")
fi
# The S3-compatible server the tests start (test/harness/servers/s3-server.ts) is moto's, from
# Python. Debian bookworm does not package moto and this machine kind reaches no PyPI, but its
# Python ships moto; try pip where an index is reachable, and say plainly when it is missing.
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]>=5' >/dev/null 2>&1 || true
fi
if python3 -c 'import moto.server' >/dev/null 2>&1; then
  all+=("moto $(python3 -c 'import moto; print(moto.__version__)')")
else
  echo "install-deps: python3 has no moto (the S3 test server): pip install 'moto[server]>=5'" >&2
  exit 1
fi
if [[ ${#installed[@]} -eq 0 ]]; then
  echo "install-deps: all present (${all[*]})"
else
  echo "install-deps: installed ${installed[*]}; all present (${all[*]})"
fi
