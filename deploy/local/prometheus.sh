#!/usr/bin/env bash
# Makes promtool and the Prometheus server available for the alert-rule and dashboard tests
# (tests/deploy/). Run with --help for usage.
set -euo pipefail

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND

promtool (rule checks and rule unit tests) and the prometheus server (started by the tests
on 127.0.0.1 with a temporary storage folder) from Debian's \`prometheus\` package.

Commands:
  install
      Return at once when promtool and prometheus are on PATH. Otherwise, as root on a
      Debian-like system, apt-get install -y --no-install-recommends prometheus, without
      starting the package's own service: a policy-rc.d that refuses service starts is in
      place during the install, and a Prometheus service the install started all the same
      (by its PID file, only if none ran before) is stopped and disabled. Anything else:
      a message saying what to install. Prints the path of promtool.
  -h, --help
      Show this help.
EOF
}

die() { echo "prometheus.sh: $*" >&2; exit 1; }
note() { echo "prometheus.sh: $*" >&2; }

policy="/usr/sbin/policy-rc.d"
pidfile="/run/prometheus/prometheus.pid"
made_policy=""

have_tools() { command -v promtool >/dev/null && command -v prometheus >/dev/null; }

# The PID in the package's PID file if that process runs the prometheus binary; empty if not.
service_pid() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^/usr/bin/prometheus' && echo "$pid"
  return 0
}

remove_policy() {
  if [[ -n "$made_policy" ]]; then
    rm -f "$policy"
    made_policy=""
  fi
}

# Stops and disables the service the package install started (never a Prometheus that was
# running before the install).
stop_started_service() {
  local pid
  pid="$(service_pid)"
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/prometheus ]] && command -v update-rc.d >/dev/null; then
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  pid="$(service_pid)"
  [[ -n "$pid" ]] || return 0
  note "stopping the prometheus service the package started (PID $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [[ -d "/proc/$pid" ]] || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

install() {
  if have_tools; then
    note "$(promtool --version 2>&1 | head -n 1)"
    command -v promtool
    return
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    die "promtool and prometheus are missing: install Debian's prometheus package as root
  (apt-get install --no-install-recommends prometheus), or put a Prometheus 2.x release's
  prometheus and promtool on PATH"
  fi
  command -v apt-get >/dev/null \
    || die "promtool and prometheus are missing and there is no apt-get: put a Prometheus 2.x release's prometheus and promtool on PATH"
  local before
  before="$(service_pid)"
  if [[ ! -e "$policy" ]]; then
    trap remove_policy EXIT
    printf '#!/bin/sh\n# No service starts while the prometheus package is installed.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  note "installing Debian's prometheus package (promtool and the server)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
      >/tmp/prometheus-apt.log 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
      >/tmp/prometheus-apt.log 2>&1 || {
      tail -n 20 /tmp/prometheus-apt.log >&2
      die "apt-get install prometheus failed (see above)"
    }
  fi
  remove_policy
  [[ -z "$before" ]] && stop_started_service
  have_tools || die "the prometheus package installed no promtool/prometheus on PATH"
  note "$(promtool --version 2>&1 | head -n 1)"
  command -v promtool
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
