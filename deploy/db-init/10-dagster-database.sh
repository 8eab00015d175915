#!/bin/sh
# Runs once, when the db volume is first initialised (the PostgreSQL image
# runs every script in /docker-entrypoint-initdb.d). Creates Dagster's own
# role and database beside the hpcperfstats database; Dagster creates its
# tables there at first start, hpcperfstats creates its schema itself.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v dagster_user="$DAGSTER_PG_USER" -v dagster_password="$DAGSTER_PG_PASSWORD" \
     -v dagster_db="$DAGSTER_PG_DB" <<'EOSQL'
CREATE ROLE :"dagster_user" LOGIN PASSWORD :'dagster_password';
CREATE DATABASE :"dagster_db" OWNER :"dagster_user";
EOSQL
