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
# Java 17 for the Spark retro-hunt tests (pyspark 4 runs on 17): Debian's headless JRE.
if ! java -version 2>&1 | grep -q 'version "17'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's openjdk-17-jre-headless for the Spark tests" >&2
    (apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q openjdk-17-jre-headless >/dev/null)
  else
    echo "Java 17 missing and cannot be installed here: Spark tests will say so and skip" >&2
  fi
fi
