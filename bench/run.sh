#!/usr/bin/env bash
# bench/run.sh [sqlite|mysql|all] [identity|ledger|aggregate|soak|all] — the benchmarks of docs/BENCHMARKS.md.
# soak searches the realistic mix's capacity, then runs it at half for 10 minutes (SOAK=10m).
# Installs wrk (Debian) if missing, builds the server, starts MariaDB for the mysql run.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
what=${2:-all}
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
mkdir -p bin
CGO_ENABLED=0 go build -o bin/server ./cmd/server
go build -o bin/bench-identity ./bench/identity
go build -o bin/ping ./bench/ping
go build -o bin/bench-ledger ./bench/ledger
go build -o bin/bench-aggregate ./bench/aggregate
go build -o bin/bench-soak ./bench/soak
CGO_ENABLED=0 go build -o bin/ledgerctl ./cmd/ledgerctl
for db in sqlite mysql; do
  [ "$which" = "$db" ] || [ "$which" = all ] || continue
  [ "$db" = mysql ] && eval "$(scripts/mariadb-up.sh)"
  for b in identity ledger aggregate soak; do
    [ "$what" = "$b" ] || [ "$what" = all ] || continue
    # The 1,000,000-member set takes 1.7 GB in InnoDB; give InnoDB room for it, as a provincial
    # server would have (the test instance starts with 512 MB).
    if [ "$b" = aggregate ] && [ "$db" = mysql ]; then
      mariadb --defaults-file="$MARIADB_CNF" -e "SET GLOBAL innodb_buffer_pool_size = 2147483648"
    fi
    if [ "$b" = soak ]; then
      bin/bench-soak -driver "$db" -mysql "${LEDGER_TEST_MYSQL_DSN:-}" -soak "${SOAK:-10m}"
      continue
    fi
    "bin/bench-$b" -driver "$db" -mysql "${LEDGER_TEST_MYSQL_DSN:-}"
    # The aggregate benchmark keeps its generated 1,000,000 members (bin/, or a MySQL
    # database agg_…) for the next run; the report benchmark is its second half.
    [ "$b" = aggregate ] && bin/bench-aggregate -report -driver "$db" -mysql "${LEDGER_TEST_MYSQL_DSN:-}"
  done
done
