#!/usr/bin/env bash
# Fetch the Apache Avro Java library and compile the interoperability program
# (deploy/local/avro-java/AvroInterop.java) against it. Run with --help for usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
pom="$here/avro-java/pom.xml"
source_file="$here/avro-java/AvroInterop.java"
version="$(sed -n 's:.*<avro.version>\(.*\)</avro.version>.*:\1:p' "$pom")"
cache_root="${AUDITSTREAM_CACHE:-$repo_root/.cache}"
[[ -n "$version" ]] || { echo "avro-java.sh: no avro.version in $pom" >&2; exit 1; }
home="$cache_root/avro-java/$version"
libs="$home/libs"

usage() {
  cat <<EOF
Usage: ${0##*/} build

Downloads the jars of Apache Avro $version (org.apache.avro:avro and its runtime
dependencies, resolved by Maven from deploy/local/avro-java/pom.xml) and compiles
AvroInterop.java with javac. Both steps run once: later runs reuse the jars, and
the classes while the source is unchanged. Prints the class path to run it with:
  java -cp "\$(${0##*/} build)" AvroInterop fingerprint schemas/avro/*.avsc
Needs Java 17+ (java and javac on PATH or \$JAVA_HOME) and Maven 3 (mvn on PATH).
Cache root: \$AUDITSTREAM_CACHE, default <repo>/.cache; files go to
<cache root>/avro-java/$version/.
EOF
}

die() { echo "avro-java.sh: $*" >&2; exit 1; }

javac_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/javac"; else echo javac; fi
}

# Moves the finished directory $1 to $2 unless a concurrent run already put one there.
publish() {
  [[ -f "$2/.complete" ]] || rm -rf "$2"
  mv -T "$1" "$2" 2>/dev/null || rm -rf "$1"
  [[ -f "$2/.complete" ]] || die "could not complete $2"
}

fetch_jars() {
  [[ -f "$libs/.complete" ]] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Avro jars"
  mkdir -p "$home"
  local tmp
  tmp="$(mktemp -d "$home/.libs.XXXXXX")"
  echo "avro-java.sh: fetching Avro $version jars into $libs" >&2
  if ! mvn -B -f "$pom" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    grep -E 'ERROR|FAIL' "$tmp.log" | head -n 20 >&2
    rm -rf "$tmp" "$tmp.log"; die "mvn dependency:copy-dependencies failed"
  fi
  rm -f "$tmp.log"
  touch "$tmp/.complete"
  publish "$tmp" "$libs"
}

# Compiles into a directory named after the source's hash, so an edit recompiles.
compile() {
  local digest classes tmp javac
  digest="$(sha256sum "$source_file" | cut -c1-16)"
  classes="$home/classes-$digest"
  if [[ ! -f "$classes/.complete" ]]; then
    javac="$(javac_bin)"
    command -v "$javac" >/dev/null || die "a JDK 17+ is needed (javac not found)"
    tmp="$(mktemp -d "$home/.classes.XXXXXX")"
    "$javac" --release 17 -Xlint:all -Werror -cp "$libs/*" -d "$tmp" "$source_file" >&2 \
      || { rm -rf "$tmp"; die "javac failed"; }
    touch "$tmp/.complete"
    publish "$tmp" "$classes"
  fi
  echo "$classes:$libs/*"
}

case "${1:-}" in
  build) fetch_jars; compile ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
