#!/bin/sh
# Stands in for the official postgres image's docker-entrypoint.sh, reduced to the contract
# modules/services/postgres.ncl relies on: POSTGRES_USER (default postgres),
# POSTGRES_PASSWORD (required on first start), POSTGRES_DB (default: the user), PGDATA;
# initdb on first start only; the server runs as the `postgres` user, also when the
# container starts as root. Connections from inside the container (socket, loopback) are
# trusted and any other host needs the password (scram-sha-256), as in the official image:
# the module's pg_isready, pg_dump and pg_restore run over the socket. As upstream, the
# database is created by a temporary server on the socket only (listen_addresses=''), which
# pg_isready over the socket already reports as accepting connections (upstream's
# docker-entrypoint.sh, docker_temp_server_start). Left out: POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, /docker-entrypoint-initdb.d scripts.
set -eu

# `docker run image -c key=value` means the server with those flags, as upstream.
if [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
  if [ "$(id -u)" = 0 ]; then
    # A fresh named volume is root's: hand it (and the socket folder) to postgres, then
    # start again as postgres (setpriv from util-linux stands in for gosu).
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?is required on the first start (initdb sets it as the superuser password)}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
      --auth=trust -D "$PGDATA"
    rm -f "$pwfile"
    printf '%s\n' "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    printf '%s\n' "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
      # A server on the socket only, so nothing connects before the database exists.
      pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
      # psql quotes the name (`:"db"`) in a script it reads, not in -c.
      echo 'CREATE DATABASE :"db";' |
        psql -v ON_ERROR_STOP=1 -v db="$db" --username="$user" --dbname=postgres
      pg_ctl -D "$PGDATA" -m fast -w stop
    fi
  fi
fi
exec "$@"
