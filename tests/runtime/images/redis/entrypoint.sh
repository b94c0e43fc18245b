#!/bin/sh
# Stands in for the official redis image's docker-entrypoint.sh: the server runs as the
# `redis` user, owning its working folder (/data, a fresh root-owned volume at first), also
# when the container starts as root. The official image builds Redis with protected mode
# off (a container is reached over its network, never on loopback); Debian's build has it
# on, so it is switched off here by a flag.
set -eu

# `docker run image --appendonly yes` means the server with those flags, as upstream.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
