#!/usr/bin/env bash
# Test tools that come from Debian packages: promtool (package prometheus),
# which the metrics tests use to check every exporter's output, curl, and wrk
# (bench/proxy.py), and Debian's headless Chromium with its chromedriver, which the
# dashboard's end-to-end test drives through Selenium (no browser download).
# Installs only what is missing; as root with apt, otherwise says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install "${missing[@]}"
else
    die tools "missing test tools; install the Debian packages: ${missing[*]}"
fi
