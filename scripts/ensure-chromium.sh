#!/usr/bin/env bash
# The browser of the browser tests: Debian's Chromium, driven by PyPI playwright through its
# executable path (never `playwright install`, which downloads a browser of its own), with a
# Korean font (fonts-nanum) so that the screenshots of the Korean pages show Korean.
# Missing: install it with apt. Still missing: say so; the browser tests then skip, or, under
# CI=true, fail.
set -u
CHROMIUM="${HAOT_TEST_CHROMIUM:-/usr/bin/chromium}"

korean_font() { fc-list 2>/dev/null | grep -qi nanum; }
if { [ ! -x "$CHROMIUM" ] || ! korean_font; } && command -v apt-get >/dev/null 2>&1; then
  echo "installing Chromium and a Korean font (Debian packages chromium, fonts-nanum)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium fonts-nanum >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q chromium fonts-nanum >/dev/null 2>&1; } \
    || true
fi
if [ -x "$CHROMIUM" ]; then
  echo "Chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1)"
else
  echo "Chromium: NOT available at $CHROMIUM"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
