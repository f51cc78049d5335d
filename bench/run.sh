#!/usr/bin/env bash
# bench/run.sh [sqlite|mysql|all] — the identity benchmarks of docs/BENCHMARKS.md.
# Installs wrk (Debian) if missing, builds the server, starts MariaDB for the mysql run.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
mkdir -p bin
CGO_ENABLED=0 go build -o bin/server ./cmd/server
go build -o bin/bench-identity ./bench/identity
go build -o bin/ping ./bench/ping
if [ "$which" = sqlite ] || [ "$which" = all ]; then
  bin/bench-identity -driver sqlite
fi
if [ "$which" = mysql ] || [ "$which" = all ]; then
  eval "$(scripts/mariadb-up.sh)"
  bin/bench-identity -driver mysql -mysql "$LEDGER_TEST_MYSQL_DSN"
fi
