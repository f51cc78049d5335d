#!/usr/bin/env bash
# mariadb-up.sh starts a throwaway MariaDB on 127.0.0.1 for tests and benchmarks.
# It installs Debian's mariadb-server when it is missing (there is no systemd here, so
# mariadbd is started by hand), creates database "ledger" and user "ledger", and prints
# the environment to use it. Usage: eval "$(scripts/mariadb-up.sh)"
# Environment: MARIADB_DIR (default /tmp/ledger-mariadb), MARIADB_PORT (default 3307),
# MARIADB_BUFFER_POOL (default 512M).
set -euo pipefail
dir=${MARIADB_DIR:-/tmp/ledger-mariadb}
port=${MARIADB_PORT:-3307}
log() { echo "mariadb-up: $*" >&2; }

if ! command -v mariadbd >/dev/null 2>&1; then
  log "installing mariadb-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >&2
fi

mkdir -p "$dir"
cnf="$dir/my.cnf"
cat >"$cnf" <<CNF
[mysqld]
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
port=$port
bind-address=127.0.0.1
user=root
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
max_connections=500
innodb_buffer_pool_size=${MARIADB_BUFFER_POOL:-512M}
innodb_flush_log_at_trx_commit=2
skip-name-resolve
[client]
socket=$dir/mysqld.sock
CNF

if mariadb-admin --defaults-file="$cnf" ping >/dev/null 2>&1; then
  log "already running on 127.0.0.1:$port"
else
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising $dir/data"
    mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; exit 1; }
  fi
  log "starting mariadbd"
  nohup mariadbd --defaults-file="$cnf" >"$dir/mariadbd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    mariadb-admin --defaults-file="$cnf" ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb-admin --defaults-file="$cnf" ping >/dev/null 2>&1 || { tail -20 "$dir/mariadbd.log" >&2; exit 1; }
fi

mariadb --defaults-file="$cnf" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS ledger CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'ledger'@'127.0.0.1' IDENTIFIED BY 'ledger';
GRANT ALL PRIVILEGES ON *.* TO 'ledger'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
log "ready on 127.0.0.1:$port"
echo "export LEDGER_TEST_MYSQL_DSN='ledger:ledger@tcp(127.0.0.1:$port)/'"
echo "export MARIADB_CNF='$cnf'"
