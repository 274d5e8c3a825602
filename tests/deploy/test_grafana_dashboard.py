"""The Grafana dashboard's JSON is well formed for Grafana: unique panel ids, panels on the
24-column grid without overlaps, every query on the `datasource` variable with a refId and
an expression, units and titles set. (The expressions themselves are evaluated by a real
Prometheus in test_prometheus_live.py.)"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.deploy.tools import DASHBOARD, DEPLOY


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_panels_are_unique_and_on_the_grid_without_overlaps() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "auditstream"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_uses_the_datasource_variable() -> None:
    dashboard = _dashboard()
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "datasource"
    assert variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    titles = set()
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        titles.add(panel["title"])
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"
    assert len(titles) == len([p for p in dashboard["panels"] if p["type"] != "row"])


def test_the_provisioning_files_point_at_the_dashboard() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "auditstream.yaml").read_text()
    )
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"] == "/var/lib/grafana/dashboards"
