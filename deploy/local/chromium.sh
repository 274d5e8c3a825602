#!/usr/bin/env bash
# Makes Debian's Chromium available for the viewer's real-browser tests (tests/e2e/), which
# drive it headless through Playwright's executable_path. Run with --help for usage.
set -euo pipefail

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

Chromium for the viewer's browser tests (tests/e2e/test_viewer_browser.py): Debian's
\`chromium\` package, driven headless by Playwright for Python through its executable path.
No browser is downloaded by Playwright itself.

Commands:
  install
      Return at once when chromium is on PATH. Otherwise, as root on a Debian-like system,
      apt-get install -y --no-install-recommends chromium (no questions asked). Anything
      else: a message saying what to install. Prints the path of the chromium binary.
  -h, --help
      Show this help.
EOF
}

die() { echo "chromium.sh: $*" >&2; exit 1; }
note() { echo "chromium.sh: $*" >&2; }

binary() { command -v chromium 2>/dev/null || true; }

install() {
  if [[ -n "$(binary)" ]]; then
    note "$(chromium --version 2>/dev/null | head -n 1)"
    binary
    return
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    die "chromium is missing: install Debian's chromium package as root
  (apt-get install --no-install-recommends chromium)"
  fi
  command -v apt-get >/dev/null \
    || die "chromium is missing and there is no apt-get: install Chromium so that 'chromium' is on PATH"
  note "installing Debian's chromium package"
  local log=/tmp/chromium-apt.log
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
      >"$log" 2>&1; then
    # A fresh machine may not have read the package lists yet.
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
      >"$log" 2>&1 || {
      tail -n 20 "$log" >&2
      die "apt-get install chromium failed (see above)"
    }
  fi
  [[ -n "$(binary)" ]] || die "the chromium package installed no 'chromium' on PATH"
  note "$(chromium --version 2>/dev/null | head -n 1)"
  binary
}

case "${1:-}" in
  install)
    [[ $# -eq 1 ]] || die "install takes no arguments (see --help)"
    install
    ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command '$1' (see --help)" ;;
esac
