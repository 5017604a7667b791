#!/usr/bin/env bash
# Installs the headless browser the console's tests drive: Debian's chromium package (launched by
# playwright-core at /usr/bin/chromium). A no-op once it is installed. Needs root (or sudo) the first time.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing chromium (for the console's browser tests)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
