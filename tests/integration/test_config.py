"""The deployable configuration in ``config/``: the alert rules parse (PromQL through
promql-parser, the rule file's shape as Prometheus reads it), every alert has a runbook
entry, and every metric a rule or a dashboard panel names is served by a real worker's
or reader's ``/metrics``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import promql_parser
import pytest
import yaml

from tests.conftest import Endpoints
from tests.integration.http import http_client
from tests.support import WorkerProcess, poll

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[2] / "config"
DOCS = CONFIG.parent / "docs"
METRIC = re.compile(r"\bcallback_stats_[a-z_]+")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((CONFIG / "prometheus/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def panel_expressions() -> list[str]:
    dashboard = json.loads((CONFIG / "grafana/callback-stats.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_rule_parses_and_has_a_runbook_entry() -> None:
    runbook = (DOCS / "runbook.md").read_text()
    anchors = {f"#{h.strip().lower()}" for h in re.findall(r"^## (.+)$", runbook, re.M)}
    found = rules()
    assert len(found) >= 8
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        promql_parser.parse(rule["expr"])  # raises on a syntax error
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#") and url[len("docs/runbook.md"):] in anchors, (
            f"{rule['alert']}: no runbook entry {url}")


def test_every_panel_query_parses() -> None:
    expressions = panel_expressions()
    assert len(expressions) >= 14
    for expr in expressions:
        promql_parser.parse(expr)


def served_names(exposition: str) -> set[str]:
    """Metric names of an exposition: the sample names and the declared ones (a labelled
    counter nobody incremented yet is declared by its HELP and TYPE lines only)."""
    names = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines()
             if line and not line.startswith("#")}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {name + suffix for suffix in HISTOGRAM_SERIES}
            if kind == "counter":
                names.add(name if name.endswith("_total") else name + "_total")
    return names


async def test_every_metric_named_is_served_by_a_real_worker_or_reader(
        worker: WorkerProcess, endpoints: Endpoints) -> None:
    named = {m for expr in [r["expr"] for r in rules()] + panel_expressions()
             for m in METRIC.findall(expr)}
    url = f"http://127.0.0.1:{worker.settings.worker_web_port}/metrics"

    async def worker_metrics() -> str | None:
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                return await response.text() if response.status == 200 else None
        except aiohttp.ClientError:
            return None

    exposition = await poll(worker_metrics, lambda text: text is not None, timeout=120,
                            what="the worker's /metrics")
    assert exposition is not None
    reader = await http_client(endpoints, "token-x=env-x")
    try:
        exposition += await (await reader.get("/metrics")).text()
    finally:
        await reader.close()
    missing = named - served_names(exposition)
    assert not missing, f"named in config/ but served by neither: {sorted(missing)}"
