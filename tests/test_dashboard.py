"""The Grafana dashboard: valid JSON, shipped by the chart, and querying only metrics that exist."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO
from tests.test_chart import one, render

DASHBOARD = REPO / "charts" / "kubeingest" / "dashboards" / "kubeingest.json"
PROMQL_FUNCS = {"sum", "rate", "histogram_quantile", "by", "le", "max", "irate", "increase"}


def exposed_metrics() -> set[str]:
    """Every series name the code can expose (histograms as _bucket/_sum/_count)."""
    rows = (REPO / "docs" / "metrics.md").read_text().splitlines()
    names: set[str] = set()
    for row in rows:
        m = re.match(r"\| `(kubeingest_\w+)` \| (\w+) \|", row)
        if m:
            name, kind = m.groups()
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" \
                else {name}
    return names


def test_dashboard_queries_only_existing_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = {n for e in exprs for n in re.findall(r"\bkubeingest_\w+", e)}
    missing = used - exposed_metrics()
    assert not missing, missing
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("stored", "latency", "lag", "errors", "phase"):
        assert topic in titles


def test_chart_ships_the_dashboard_for_the_grafana_sidecar() -> None:
    docs = render((), ("metrics.grafanaDashboard.enabled=true",), ())
    cm = one(docs, "ConfigMap", "rel-kubeingest-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["kubeingest.json"]) == json.loads(DASHBOARD.read_text())
    assert not [d for d in render() if d["metadata"]["name"] == "rel-kubeingest-dashboard"]
