"""The alerting rules load in Prometheus and pass their unit tests (promtool)."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy.tools import ALERTS, ALERTS_TEST, SCRAPE_CONFIG, promtool


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    result = _run("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts == firing, f"alerts never shown firing: {alerts - firing}"
    assert alerts == quiet, f"alerts never shown quiet: {alerts - quiet}"


def test_promtool_check_config() -> None:
    # The example scrape config loads the rules (its rule_files are relative to itself).
    result = _run("check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
