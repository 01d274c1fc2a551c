#!/usr/bin/env bash
# amtool, which checks deploy/compose/alertmanager/alertmanager.yml and tests its routes
# (tests/ops/test_alertmanager.py): Debian's package prometheus-alertmanager (0.25 on bookworm).
# Only amtool is used; haot never starts the package's alertmanager service.
# Missing: install it with apt. Still missing: say so; the tests then skip, or, under CI=true,
# fail (and so does this script).
# Debian's package would start its own alertmanager service (port 9093) where a machine lets
# packages start services: as scripts/ensure-prometheus.sh does, a policy-rc.d that denies every
# start is put in place for the install when the machine has none, and removed afterwards.
set -u
AMTOOL="${HAOT_TEST_AMTOOL:-$(command -v amtool 2>/dev/null || echo /usr/bin/amtool)}"

if [ ! -x "$AMTOOL" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing amtool (Debian package prometheus-alertmanager)"
  export DEBIAN_FRONTEND=noninteractive
  POLICY=/usr/sbin/policy-rc.d
  if [ ! -e "$POLICY" ] && [ -w /usr/sbin ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" \
      && trap 'rm -f "$POLICY"' EXIT
  fi
  apt-get install -y -q --no-install-recommends prometheus-alertmanager >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends prometheus-alertmanager >/dev/null 2>&1; } \
    || true
  AMTOOL="$(command -v amtool 2>/dev/null || echo /usr/bin/amtool)"
fi
if [ -x "$AMTOOL" ]; then
  echo "amtool: $("$AMTOOL" --version 2>&1 | head -n1)"
else
  echo "amtool: NOT available (install the Debian package prometheus-alertmanager)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
