"""Where the deploy tests find their tools (promtool and prometheus from
deploy/local/prometheus.sh, helm from deploy/local/helm.sh) and the files under deploy/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "auditstream.json"
CHART = DEPLOY / "helm" / "auditstream"


def tool(name: str, installer: str) -> str:
    """The path of ``name`` on PATH; the test fails, naming the script that installs it, if
    there is none."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH: run `bash {installer} install` (test.sh does)")
    return found


def promtool() -> str:
    return tool("promtool", "deploy/local/prometheus.sh")


def prometheus() -> str:
    return tool("prometheus", "deploy/local/prometheus.sh")


def helm() -> str:
    """helm from <repo>/.tools/bin (or $AUDITSTREAM_TOOLS/bin) where helm.sh builds it, else
    from PATH."""
    tools = Path(os.environ.get("AUDITSTREAM_TOOLS", ROOT / ".tools"))
    local = tools / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return tool("helm", "deploy/local/helm.sh")
