"""docs/operations.md stays in step with what it describes: a section for every alert (their
runbook links point there), a row for every metric the processes define, and the sizing figures
as bench/README.md has them."""

from __future__ import annotations

import re

import yaml

from tests.deploy.tools import ALERTS, ROOT
from tests.readme_blocks import section, sh_blocks

GUIDE = ROOT / "docs" / "operations.md"
METRIC_MODULES = (
    "pipeline/metrics.py",
    "sinks/metrics.py",
    "api/metrics.py",
    "producers/metrics.py",
    "store/indexer_metrics.py",
)


def test_every_alert_has_a_runbook_section() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    guide = GUIDE.read_text()
    for group in rules["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert f"\n### {rule['alert']}\n" in guide, rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}


def test_every_metric_we_define_is_described() -> None:
    guide = GUIDE.read_text()
    defined = set()
    for module in METRIC_MODULES:
        source = (ROOT / module).read_text()
        defined |= set(re.findall(r"(?:Counter|Gauge|Histogram)\(\s*\"([a-z_]+)\"", source))
    assert len(defined) > 20
    for name in defined:
        assert f"| `{name}` |" in guide, f"{name} is not in the metrics table"


def test_sizing_figures_are_the_benchmarks() -> None:
    guide = GUIDE.read_text()
    bench = (ROOT / "bench" / "README.md").read_text()
    for figure in ("42,312", "28,986", "7,541", "24,393", "26,672", "22,779", "335 KiB"):
        assert figure in bench, figure
    claims = ("42,000", "29,000", "7,500", "S3 24,000", "GCS 27,000", "Azure 23,000", "335 KiB")
    for claim in claims:
        assert claim in guide, claim


def test_the_readme_points_to_what_exists() -> None:
    text = section((ROOT / "README.md").read_text(encoding="utf-8"), "Running in production")
    (block,) = sh_blocks(text)
    assert (
        block.splitlines()[0] == "docker build -f deploy/docker/Dockerfile -t auditstream:0.1.0 ."
    )
    paths = set(re.findall(r"`((?:deploy|docs)/[^`\s]+)`", text))
    paths |= set(re.findall(r"\((docs/[^)]+)\)", text))
    assert len(paths) >= 6
    for path in paths:
        assert (ROOT / path).exists(), path
