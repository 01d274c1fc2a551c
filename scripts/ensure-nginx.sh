#!/usr/bin/env bash
# The gateway of the split deployment: Debian's nginx (package nginx, 1.22 on bookworm), run by
# haot in the foreground with a configuration of its own (haot.gateway renders it; `nginx -p DIR
# -c DIR/nginx.conf -g 'daemon off;'`), never as the system service.
# Missing: install it with apt. Still missing: say so; the gateway tests then skip, or, under
# CI=true, fail (and so does this script).
# Where a machine lets packages start services, Debian's package also starts its own nginx on
# port 80 with its default site; haot neither needs nor touches that one.
set -u
NGINX="${HAOT_TEST_NGINX:-$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}"

if [ ! -x "$NGINX" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing nginx (Debian package nginx)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q nginx >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nginx >/dev/null 2>&1; } \
    || true
  NGINX="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
fi
if [ -x "$NGINX" ]; then
  # nginx -v writes its version to stderr.
  echo "nginx: $("$NGINX" -v 2>&1 | head -n1)"
else
  echo "nginx: NOT available (install the Debian package nginx)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
