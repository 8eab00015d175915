#!/bin/sh
# The upstream image's RABBITMQ_DEFAULT_USER/PASS, as a config file read on
# every start (the user is created only when the node's database is new).
set -eu
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
  umask 077
  printf 'default_user = %s\ndefault_pass = %s\n' \
    "$RABBITMQ_DEFAULT_USER" "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is required}" \
    > /etc/rabbitmq/conf.d/10-default-user.conf
  unset RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS
fi
exec "$@"
