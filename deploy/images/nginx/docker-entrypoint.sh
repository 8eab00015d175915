#!/bin/sh
# The upstream nginx image's template step: each /etc/nginx/templates/X.template
# becomes /etc/nginx/conf.d/X with only the variables set in the environment
# substituted (nginx's own $variables stay as they are).
set -eu
if [ -d /etc/nginx/templates ]; then
  mkdir -p /etc/nginx/conf.d
  defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
  for t in /etc/nginx/templates/*.template; do
    [ -f "$t" ] || continue
    out=/etc/nginx/conf.d/$(basename "$t" .template)
    envsubst "$defined" < "$t" > "$out"
  done
fi
exec "$@"
