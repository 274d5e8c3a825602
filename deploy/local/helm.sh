#!/usr/bin/env bash
# Builds the Helm CLI that the chart tests run (helm lint, helm template) with Go, once, into
# <repo>/.tools/bin. Run with --help for usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
version="${HELM_VERSION:-v3.22.0}"
bin_dir="${AUDITSTREAM_TOOLS:-$repo_root/.tools}/bin"
helm="$bin_dir/helm"
stamp="$bin_dir/.helm-version"

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

The Helm $version CLI for the chart tests (deploy/helm/auditstream), built from source with
\`go install helm.sh/helm/v3/cmd/helm@$version\` through the Go module proxy. Needs Go
(go on PATH, or /usr/local/go/bin/go). The build takes a few minutes on two cores; later
runs return at once.

Commands:
  install
      Build helm into $bin_dir (once: returns at once when helm $version is there)
      and print its path. Tools root: \$AUDITSTREAM_TOOLS, default <repo>/.tools
      (git-ignored). Another version: \$HELM_VERSION.
  path
      Print the path of helm if helm $version is installed; exit 1 otherwise.
  -h, --help
      Show this help.
EOF
}

die() { echo "helm.sh: $*" >&2; exit 1; }
note() { echo "helm.sh: $*" >&2; }

go_bin() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

installed() {
  [[ -x "$helm" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]
}

install() {
  if installed; then
    note "helm $version already installed"
    echo "$helm"
    return
  fi
  local go
  go="$(go_bin)" || die "Go is needed to build helm $version (install Go 1.24+ or put go on PATH)"
  mkdir -p "$bin_dir"
  note "building helm $version with $("$go" version | cut -d' ' -f3) into $bin_dir (a few minutes)"
  local log
  log="$(mktemp)"
  # CGO off: a static binary, no C compiler needed. The version is stamped as release builds do.
  if ! CGO_ENABLED=0 GOBIN="$bin_dir" "$go" install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
      "helm.sh/helm/v3/cmd/helm@$version" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    die "go install helm.sh/helm/v3/cmd/helm@$version failed (is the Go module proxy reachable?)"
  fi
  rm -f "$log"
  "$helm" version --short >/dev/null || die "$helm does not run"
  echo "$version" >"$stamp"
  echo "$helm"
}

case "${1:-}" in
  install)
    [[ $# -eq 1 ]] || die "install takes no arguments (see --help)"
    install
    ;;
  path)
    installed || die "helm $version is not installed (run: ${0##*/} install)"
    echo "$helm"
    ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command '$1' (see --help)" ;;
esac
