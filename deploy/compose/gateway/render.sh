#!/bin/sh
# Renders the gateway's nginx configuration for deploy/compose/compose.yaml into nginx.conf
# beside this script (or into the file named by $1), from the template haot ships
# (python -m haot.gateway; docs/gateway.md). Run it again whenever the template or an argument
# below changes: tests/ops/test_deploy_files.py fails while the committed file differs.
#
#   - upstreams: the compose services, each listening on 8000;
#   - --trusted-proxy: the pages container's fixed address in compose.yaml (its X-Forwarded-For
#     names the visitor); change both together;
#   - logs to the container's stdout/stderr (JSON access log, read by Alloy into Loki).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3
out=${1:-$here/nginx.conf}
"$python" -m haot.gateway \
    --runtime-dir /run/haot-gateway --listen-host 0.0.0.0 --port 8080 \
    --upstream identity=identity:8000 --upstream lodging=lodging:8000 \
    --upstream reservation=reservation:8000 --upstream payment=payment:8000 \
    --upstream point=point:8000 --upstream coupon=coupon:8000 --upstream review=review:8000 \
    --upstream web=web:8000 \
    --rate-per-second 200 --burst 400 \
    --trusted-proxy 172.28.0.81 \
    --access-log /dev/stdout --error-log stderr >"$out.tmp"
mv "$out.tmp" "$out"
