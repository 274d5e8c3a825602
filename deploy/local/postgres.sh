#!/usr/bin/env bash
# Makes the PostgreSQL server binaries (initdb, pg_ctl, postgres) available for the audit store
# tests and benchmark, which start their own server on 127.0.0.1 (devservices/postgres.py).
# Run with --help for usage.
set -euo pipefail

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

The server binaries of Debian's \`postgresql\` package; the tests run initdb and pg_ctl on a
temporary directory themselves (as the unprivileged \`postgres\` user when run as root).

Commands:
  install
      Return at once when /usr/lib/postgresql/<version>/bin/initdb exists. Otherwise, as root
      on a Debian-like system, apt-get install -y --no-install-recommends postgresql, without
      starting the package's own cluster: a policy-rc.d that refuses service starts is in place
      during the install, and a cluster the install created (none existed before) is stopped
      and dropped. Anything else: a message saying what to install. Prints the bin directory
      (the newest version's when there are several).
  bindir
      Print the bin directory, or fail saying how to install it.
  -h, --help
      Show this help.
EOF
}

die() { echo "postgres.sh: $*" >&2; exit 1; }
note() { echo "postgres.sh: $*" >&2; }

policy="/usr/sbin/policy-rc.d"
made_policy=""

# The newest /usr/lib/postgresql/<version>/bin holding initdb; empty if none.
find_bindir() {
  local dir best="" best_version=-1 version
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" ]] || continue
    version="$(basename "$(dirname "$dir")")"
    version="${version%%.*}"
    [[ "$version" =~ ^[0-9]+$ ]] || continue
    if ((version > best_version)); then
      best="$dir"
      best_version="$version"
    fi
  done
  printf '%s' "$best"
}

# "version name" of every cluster pg_lsclusters knows (Debian's postgresql-common); empty if none.
clusters() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters --no-header 2>/dev/null | awk '{print $1" "$2}' || true
}

remove_policy() {
  if [[ -n "$made_policy" ]]; then
    rm -f "$policy"
    made_policy=""
  fi
}

# Stops and drops the clusters the package install created (never one that existed before).
drop_new_clusters() {
  local before="$1" version name
  while read -r version name; do
    [[ -n "$version" ]] || continue
    if grep -qx "$version $name" <<<"$before"; then
      continue
    fi
    note "dropping the cluster $version/$name the package created (the tests start their own)"
    pg_dropcluster --stop "$version" "$name" >/dev/null 2>&1 \
      || note "could not drop cluster $version/$name: run pg_dropcluster --stop $version $name"
  done < <(clusters)
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable postgresql.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/postgresql ]] && command -v update-rc.d >/dev/null; then
    update-rc.d postgresql disable >/dev/null 2>&1 || true
  fi
}

install() {
  local dir
  dir="$(find_bindir)"
  if [[ -n "$dir" ]]; then
    note "$("$dir/postgres" --version 2>&1 | head -n 1)"
    echo "$dir"
    return
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    die "the PostgreSQL server binaries are missing: install Debian's postgresql package as root
  (apt-get install --no-install-recommends postgresql), or run this script as root"
  fi
  command -v apt-get >/dev/null \
    || die "the PostgreSQL server binaries are missing and there is no apt-get: install PostgreSQL 13 or newer so that /usr/lib/postgresql/<version>/bin/initdb exists"
  local before
  before="$(clusters)"
  if [[ ! -e "$policy" ]]; then
    trap remove_policy EXIT
    printf '#!/bin/sh\n# No service starts while the postgresql package is installed.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  note "installing Debian's postgresql package (server binaries)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
      >/tmp/postgres-apt.log 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
      >/tmp/postgres-apt.log 2>&1 || {
      tail -n 20 /tmp/postgres-apt.log >&2
      die "apt-get install postgresql failed (see above)"
    }
  fi
  remove_policy
  drop_new_clusters "$before"
  dir="$(find_bindir)"
  [[ -n "$dir" ]] || die "the postgresql package installed no /usr/lib/postgresql/<version>/bin/initdb"
  note "$("$dir/postgres" --version 2>&1 | head -n 1)"
  echo "$dir"
}

case "${1:-}" in
  install)
    [[ $# -eq 1 ]] || die "install takes no arguments (see --help)"
    install
    ;;
  bindir)
    [[ $# -eq 1 ]] || die "bindir takes no arguments (see --help)"
    dir="$(find_bindir)"
    [[ -n "$dir" ]] || die "the PostgreSQL server binaries are missing: run ${0##*/} install"
    echo "$dir"
    ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command '$1' (see --help)" ;;
esac
