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
# Suricata 7 for the sensor tests (the exported rules loaded and run by the engine): Debian
# bookworm has none, bookworm-backports has 7.0.
if ! command -v suricata >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's suricata (bookworm-backports) for the sensor tests" >&2
    src=/etc/apt/sources.list.d/shieldwall-backports.sources
    if grep -qs 'bookworm' /etc/os-release && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$src"
      apt-get update -q >/dev/null || true
    fi
    (apt-get install -y -q -t bookworm-backports suricata >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q -t bookworm-backports suricata >/dev/null) \
      || echo "suricata could not be installed: the Suricata engine tests will say so and skip" >&2
  else
    echo "suricata missing and cannot be installed here: the Suricata engine tests will say so and skip" >&2
  fi
fi
