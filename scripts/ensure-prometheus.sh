#!/usr/bin/env bash
# promtool, which checks and unit-tests the alerting and recording rules of deploy/prometheus
# (tests/ops): Debian's package prometheus (2.42 on bookworm), which ships both prometheus and
# promtool. Only promtool is used; haot never starts the package's prometheus service.
# Missing: install it with apt. Still missing: say so; the rule tests then skip, or, under
# CI=true, fail (and so does this script).
# Debian's package would start its own prometheus service (port 9090) where a machine lets
# packages start services: a policy-rc.d that denies every start is put in place for the
# install, when the machine has none (containers usually do), and removed afterwards. The
# exporters it recommends are not installed (--no-install-recommends).
set -u
PROMTOOL="${HAOT_TEST_PROMTOOL:-$(command -v promtool 2>/dev/null || echo /usr/bin/promtool)}"

if [ ! -x "$PROMTOOL" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  POLICY=/usr/sbin/policy-rc.d
  if [ ! -e "$POLICY" ] && [ -w /usr/sbin ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" \
      && trap 'rm -f "$POLICY"' EXIT
  fi
  apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } \
    || true
  PROMTOOL="$(command -v promtool 2>/dev/null || echo /usr/bin/promtool)"
fi
if [ -x "$PROMTOOL" ]; then
  echo "promtool: $("$PROMTOOL" --version 2>&1 | head -n1)"
else
  echo "promtool: NOT available (install the Debian package prometheus)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
