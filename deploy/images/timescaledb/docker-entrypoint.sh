#!/bin/sh
# A small stand-in for the upstream PostgreSQL image's entrypoint: on a new
# data directory, initdb with POSTGRES_USER/POSTGRES_PASSWORD, create
# POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh and *.sql once; then run
# the server as PID 1 (so it gets the stop signal itself).
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
export POSTGRES_USER POSTGRES_DB

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
CONF
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # a private server on the socket only while the init scripts run
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    # stdin, not -c: psql interpolates :"db" (a quoted identifier) only there
    echo 'CREATE DATABASE :"db";' | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
      --dbname postgres -v db="$POSTGRES_DB" >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "entrypoint: running $f"; sh "$f" ;;
      *.sql) echo "entrypoint: running $f"
             psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  echo "entrypoint: database initialised"
fi
exec "$@"
