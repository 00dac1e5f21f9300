#!/usr/bin/env bash
# Install the system packages relmap needs beyond Python: Chromium for the
# dashboard browser tests, and a CJK font, so that static charts and browser
# screenshots show Chinese text instead of boxes.
# Runs apt-get only as root and only when something is missing; otherwise it
# prints what to install and carries on.
set -euo pipefail

# --with-browser also installs Chromium (the tests need it; the demo does not).
with_browser=false
if [ "${1:-}" = "--with-browser" ]; then
  with_browser=true
fi

have_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh family 2>/dev/null | grep -q .
}

# The dashboard browser tests drive Debian's Chromium and its driver; nothing
# downloads a browser of its own.
have_chromium() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if [ "$with_browser" = true ] && ! have_chromium; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium and its driver (chromium, chromium-driver) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "Chromium not found. Install it for the browser tests: sudo apt-get install chromium chromium-driver" >&2
  fi
fi

if have_cjk_font; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing a CJK font (fonts-wqy-microhei) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq fonts-wqy-microhei fontconfig >/dev/null
  exit 0
fi
echo "No CJK font found. Install one, for example: sudo apt-get install fonts-wqy-microhei" >&2
