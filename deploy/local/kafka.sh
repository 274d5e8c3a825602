#!/usr/bin/env bash
# Fetch, start and stop a single-node Apache Kafka broker (KRaft mode) for local
# tests and benchmarks. Run with --help for usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
pom="$here/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
cache_root="${AUDITSTREAM_CACHE:-$repo_root/.cache}"
[[ -n "$version" ]] || { echo "kafka.sh: no kafka.version in $pom" >&2; exit 1; }
libs="$cache_root/kafka/$version/libs"
marker="$libs/.complete"

usage() {
  cat <<EOF
Usage: ${0##*/} COMMAND [OPTIONS]

Runs a single-node Apache Kafka $version broker (KRaft, combined broker and
controller) from jars that Maven resolves from deploy/local/kafka/pom.xml.
Needs Java 17+ (java on PATH or \$JAVA_HOME) and Maven 3 (mvn on PATH) for fetch.

Commands:
  fetch
      Download the broker jars into the cache (once; later runs return at once).
      Prints the jar directory. Cache root: \$AUDITSTREAM_CACHE, default
      <repo>/.cache; jars go to <cache root>/kafka/$version/libs.
  start --port P --controller-port C --data DIR [--prop KEY=VALUE]...
        [--node-id N --voters VOTERS --cluster-id ID]
      Fetch if needed, format DIR/logs for KRaft (first start only), start the
      broker in the background on 127.0.0.1 and wait (up to \$KAFKA_START_TIMEOUT
      seconds, default 90) until it is ready. Prints the bootstrap address
      127.0.0.1:P. Writes DIR/server.properties, DIR/kafka.pid, DIR/kafka.log.
      --prop adds or overrides a broker property (repeatable; later keys win).
      JVM heap: \$KAFKA_HEAP_OPTS, default -Xms256m -Xmx512m.
      A node of a multi-node cluster: --node-id (default 1), --voters (the
      controller.quorum.voters of the cluster, e.g. 1@127.0.0.1:9093,2@127.0.0.1:9095;
      default: this node alone) and --cluster-id (the same for every node, used
      to format; default: a random one). The nodes of a new cluster must be
      started at the same time: a node is ready only once a quorum of voters runs.
  stop --data DIR [--timeout SECONDS]
      Send TERM to the broker whose PID is in DIR/kafka.pid, then KILL after
      the timeout (default 30 s). Does nothing if it is not running.
EOF
}

die() { echo "kafka.sh: $*" >&2; exit 1; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/java"; else echo java; fi
}

fetch() {
  if [[ -f "$marker" ]]; then echo "$libs"; return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  mkdir -p "$(dirname "$libs")"
  local tmp
  tmp="$(mktemp -d "$(dirname "$libs")/.libs.XXXXXX")"
  echo "kafka.sh: fetching Kafka $version jars into $libs" >&2
  if ! mvn -B -f "$pom" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    grep -E 'ERROR|FAIL' "$tmp.log" | head -n 20 >&2
    rm -rf "$tmp" "$tmp.log"; die "mvn dependency:copy-dependencies failed"
  fi
  rm -f "$tmp.log"
  touch "$tmp/.complete"
  [[ -f "$marker" ]] || rm -rf "$libs"
  # Another fetch may have won the race; its result is as good as ours.
  mv -T "$tmp" "$libs" 2>/dev/null || rm -rf "$tmp"
  [[ -f "$marker" ]] || die "fetch did not complete"
  echo "$libs"
}

# Succeeds if the process with PID $1 is the broker started for data dir $2.
is_our_broker() {
  alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "kafka.Kafka $2/server.properties"
}

# Succeeds while process $1 exists and is not a zombie.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" && [[ "${stat##*) }" != Z* ]]
}

# Prints the first errors and the tail of broker log $1 to stderr.
show_log() {
  {
    echo "--- first errors in $1 ---"
    grep -m 3 -A 1 -E '^\[[^]]*\] (ERROR|FATAL) ' "$1" || true
    echo "--- tail of $1 ---"
    tail -n 25 "$1"
  } >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_cluster_id() {
  # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars).
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && "$id" != AAAAAAAAAAAAAAAAAAAAA* ]] && { echo "$id"; return; }
  done
}

start() {
  local port="" cport="" data="" props=() node_id=1 voters="" cluster_id=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="${2:?}"; shift 2 ;;
      --controller-port) cport="${2:?}"; shift 2 ;;
      --data) data="${2:?}"; shift 2 ;;
      --prop) props+=("${2:?}"); shift 2 ;;
      --node-id) node_id="${2:?}"; shift 2 ;;
      --voters) voters="${2:?}"; shift 2 ;;
      --cluster-id) cluster_id="${2:?}"; shift 2 ;;
      *) die "start: unknown argument '$1' (see --help)" ;;
    esac
  done
  [[ -n "$port" && -n "$cport" && -n "$data" ]] || die "start needs --port, --controller-port and --data"
  [[ "$node_id" =~ ^[0-9]+$ ]] || die "start: --node-id must be a number"
  [[ -n "$voters" ]] || voters="$node_id@127.0.0.1:$cport"
  [[ -n "$cluster_id" ]] || cluster_id="$(random_cluster_id)"
  mkdir -p "$data"
  data="$(cd "$data" && pwd)"
  local pidfile="$data/kafka.pid" log="$data/kafka.log" conf="$data/server.properties"
  if [[ -f "$pidfile" ]] && is_our_broker "$(cat "$pidfile")" "$data"; then
    die "a broker is already running for $data (PID $(cat "$pidfile"))"
  fi
  fetch >/dev/null
  local java; java="$(java_bin)"
  command -v "$java" >/dev/null || die "Java 17+ is needed to run the broker (java not found)"

  cat >"$conf" <<EOF
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$data/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  local p
  for p in "${props[@]}"; do echo "$p" >>"$conf"; done
  cat >"$data/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF

  local t0=$SECONDS
  : >"$log"
  if [[ ! -f "$data/logs/meta.properties" ]]; then
    "$java" -Xmx256m -cp "$libs/*" -Dlog4j.configuration="file:$data/log4j.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$conf" >>"$log" 2>&1 \
      || { show_log "$log"; die "formatting $data/logs failed (log: $log)"; }
  fi

  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several JVM options.
  "$java" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$data/log4j.properties" -cp "$libs/*" \
    kafka.Kafka "$conf" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"

  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$port" && grep -q 'Kafka Server started' "$log"; do
    if ! alive "$pid"; then
      show_log "$log"; rm -f "$pidfile"
      die "broker exited during startup (log: $log)"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$log"
      stop --data "$data" --timeout 10 >&2
      die "broker not ready after ${KAFKA_START_TIMEOUT:-90} s (log: $log)"
    fi
    sleep 0.2
  done
  echo "kafka.sh: broker PID $pid ready in $((SECONDS - t0)) s" >&2
  echo "127.0.0.1:$port"
}

stop() {
  local data="" timeout=30
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --data) data="${2:?}"; shift 2 ;;
      --timeout) timeout="${2:?}"; shift 2 ;;
      *) die "stop: unknown argument '$1' (see --help)" ;;
    esac
  done
  [[ -n "$data" ]] || die "stop needs --data"
  [[ -d "$data" ]] || return 0
  data="$(cd "$data" && pwd)"
  local pidfile="$data/kafka.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if is_our_broker "$pid" "$data"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then
      echo "kafka.sh: broker PID $pid still running after ${timeout} s, sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  fetch) shift; fetch "$@" ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
