#!/bin/sh
# Renders the gateway's nginx configuration for Kubernetes into nginx.conf beside this script
# (or into the file named by $1), from the template haot ships (python -m haot.gateway;
# docs/gateway.md); kustomization.yaml turns it into the ConfigMap haot-gateway. Run it again
# whenever the template or an argument below changes: tests/ops/test_deploy_files.py fails while
# the committed file differs.
#
#   - upstreams: the Services of base/ (cluster DNS names, resolved when nginx starts);
#   - --trusted-proxy: whose X-Forwarded-For names the client: the pods of the pages process and
#     the ingress controller, i.e. the cluster's pod network. 10.0.0.0/8 holds the usual pod
#     CIDRs; narrow it to your cluster's (kubectl cluster-info dump | grep -m1 cluster-cidr);
#   - logs to the container's stdout/stderr.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
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
    --trusted-proxy 10.0.0.0/8 \
    --access-log /dev/stdout --error-log stderr >"$out.tmp"
mv "$out.tmp" "$out"
