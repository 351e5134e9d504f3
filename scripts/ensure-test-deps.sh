#!/usr/bin/env bash
# System packages the browser tests need, installed from Debian's packages (never a downloaded browser).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests" >&2
    (apt-get install -y -q chromium >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
  else
    echo "chromium missing and cannot be installed here: browser tests will say so and skip" >&2
  fi
fi
