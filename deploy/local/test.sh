#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine (a virtualenv with the project and its
# dev dependencies, the Kafka broker jars), then runs lint, type checks and the test suite.
# Needs: Python 3.11+, a JDK 17+, Maven (first run only, to fetch the broker and Avro jars),
# Node.js 20 and npm (Azurite, the Azure Blob emulator); Debian's apt as root for promtool and
# prometheus (or both on PATH), for chromium (or chromium on PATH), and Go for helm (built once
# into .tools/).
# Extra arguments go to pytest, e.g. `deploy/local/test.sh -k embedded -x`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

step "python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

step "kafka broker jars"
bash deploy/local/kafka.sh fetch

step "avro java library (encoding interop test)"
bash deploy/local/avro-java.sh build

step "storage emulators (moto, fake-gcs-server, Azurite)"
bash deploy/local/emulators.sh install

step "prometheus and promtool (alert rule and dashboard tests)"
bash deploy/local/prometheus.sh install

step "postgresql server binaries (audit store tests)"
bash deploy/local/postgres.sh install

step "chromium (the viewer's browser tests)"
bash deploy/local/chromium.sh install

step "helm (chart tests; built once into .tools/)"
bash deploy/local/helm.sh install

# Lint, types and tests all run, so one report shows every problem; any failure fails the run.
failed=()

step "ruff"
.venv/bin/ruff check . || failed+=(ruff)
.venv/bin/ruff format --check . || failed+=("ruff format")

step "vulture (dead code)"
.venv/bin/vulture || failed+=(vulture)

step "mypy"
.venv/bin/mypy || failed+=(mypy)

step "pytest"
mkdir -p .cache
.venv/bin/python -m pytest --junitxml=.cache/junit.xml "$@" || failed+=(pytest)
# A plain summary line, printed last (librdkafka may log after pytest's own summary).
summary="$(.venv/bin/python - <<'PY' || true
import xml.etree.ElementTree as ET
suite = ET.parse(".cache/junit.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite[0]
total, fail = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
skipped = int(suite.get("skipped", 0))
print(f"pytest: {total - fail - skipped} passed, {fail} failed, {skipped} skipped")
PY
)"

if ((${#failed[@]})); then
  printf '\nFAILED: %s\n%s\n' "${failed[*]}" "$summary"
  exit 1
fi
printf '\nall checks passed\n%s\n' "$summary"
