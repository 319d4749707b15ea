"""Settings: every contract variable, validated once, with one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stream_app.settings import Settings, load_settings, parse_tokens

REPO = Path(__file__).resolve().parents[2]
CONTRACT_NAMES = ["KAFKA_BOOTSTRAP", "REDIS_URL", "RECENCY_WINDOW_SECONDS",
                  "MATCH_GRACE_SECONDS", "TIMEZONE", "API_TOKENS", "READER_PORT",
                  "TOPIC_OUTBOUND", "TOPIC_INBOUND", "TOPIC_CONFIG", "TOPIC_OUTCOMES",
                  "TOPIC_DLQ", "TOPIC_STATS"]


def test_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONTRACT_NAMES:
        monkeypatch.delenv(f"STREAM_APP_{name}", raising=False)
    s = Settings()
    assert (s.kafka_bootstrap, s.redis_url) == ("localhost:9092", "redis://localhost:6379/0")
    assert (s.recency_window_seconds, s.match_grace_seconds) == (604_800, 30)
    assert (s.timezone, s.reader_port, s.tokens) == ("UTC", 8080, {})
    assert (s.topic_outbound, s.topic_inbound, s.topic_config, s.topic_outcomes,
            s.topic_dlq, s.topic_stats) == ("outbound-calls", "inbound-callbacks",
                                            "callback-agent-config", "callback-outcomes",
                                            "callback-events-dlq", "callback-stats")


def test_every_contract_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_TIMEZONE", "America/Sao_Paulo")
    monkeypatch.setenv("STREAM_APP_API_TOKENS", "t1=env1, t2=env2")
    monkeypatch.setenv("STREAM_APP_TOPIC_DLQ", "dead")
    monkeypatch.setenv("STREAM_APP_TOPIC_STATS", "counters")
    s = Settings()
    assert s.topic_stats == "counters"
    assert s.zone.key == "America/Sao_Paulo"
    assert s.tokens == {"t1": "env1", "t2": "env2"}
    assert s.topic_dlq == "dead"
    assert "t1" not in repr(s) and "t1" not in str(s.model_dump())


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("STREAM_APP_TIMEZONE", "Mars/Olympus", "STREAM_APP_TIMEZONE"),
    ("STREAM_APP_READER_PORT", "99999", "STREAM_APP_READER_PORT"),
    ("STREAM_APP_RECENCY_WINDOW_SECONDS", "-1", "STREAM_APP_RECENCY_WINDOW_SECONDS"),
    ("STREAM_APP_API_TOKENS", "secret-token-without-env", "STREAM_APP_API_TOKENS"),
])
def test_bad_value_stops_with_one_line_naming_the_variable(name: str, value: str,
                                                           fragment: str) -> None:
    result = subprocess.run([sys.executable, "-c", "from stream_app.settings import "
                             "load_settings; load_settings()"],
                            env={"PATH": "/usr/bin:/bin", name: value}, cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {fragment}")
    assert "secret-token" not in result.stderr


def test_token_errors_never_echo_tokens() -> None:
    with pytest.raises(ValueError) as info:
        parse_tokens("good=env,dup=env,dup=other")
    assert "dup" not in str(info.value)


def test_load_settings_exits_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_PARTITIONS", "0")
    with pytest.raises(SystemExit) as info:
        load_settings()
    assert str(info.value).startswith("error: STREAM_APP_PARTITIONS")


def test_compose_uses_only_known_settings_and_the_local_kafka_release() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert {"kafka", "redis", "worker", "reader"} <= set(compose["services"])
    pom = (REPO / "config/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>(.+)</kafka.version>", pom).group(1)
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version}"
    assert "--appendonly" in compose["services"]["redis"]["command"]
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"STREAM_APP_([A-Z_]+)", text))
    known = {name.upper() for name in Settings.model_fields}
    assert used and used <= known, used - known
    for service in ("worker", "reader"):
        env = compose["services"][service]["environment"]
        assert env["STREAM_APP_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["STREAM_APP_REDIS_URL"].startswith("redis://redis:")


def test_compose_and_the_image_probe_the_health_endpoints() -> None:
    """The worker's container is restarted on a failed liveness probe (/healthz on its
    web port); the reader's readiness is /readyz on its port."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    worker = " ".join(compose["services"]["worker"]["healthcheck"]["test"])
    reader = " ".join(compose["services"]["reader"]["healthcheck"]["test"])
    defaults = Settings()
    assert f":{defaults.worker_web_port}/healthz" in worker
    assert f":{compose['services']['reader']['environment']['STREAM_APP_READER_PORT']}/readyz" \
        in reader
    assert compose["services"]["worker"]["restart"] == "unless-stopped"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and f":{defaults.worker_web_port}/healthz" in dockerfile


def test_the_image_runs_unprivileged_with_its_state_on_a_volume() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    data_dir = worker["environment"]["STREAM_APP_DATA_DIR"]
    assert f"worker-state:{data_dir}" in worker["volumes"]
    assert "worker-state" in compose["volumes"]
    lines = (REPO / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["app"], "one unprivileged user, set after the install"
    assert any("-o app" in line and data_dir in line for line in lines), "it owns its state"
    assert f'VOLUME ["{data_dir}"]' in lines
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".services", ".git", "tests"} <= set(ignored)


def test_effective_settings_say_where_each_came_from_and_mask_secrets() -> None:
    """``stream-app settings``: every variable, its value, its source; no secret shown."""
    from stream_app.settings import effective

    environ = {"STREAM_APP_API_TOKENS": "sekret=env1", "STREAM_APP_PARTITIONS": "4",
               "STREAM_APP_REDIS_URL": "redis://:hunter2@db:6379/0"}
    rows = {r.variable: r for r in effective(
        Settings(api_tokens="sekret=env1", partitions=4,  # type: ignore[arg-type]
                 redis_url="redis://:hunter2@db:6379/0"), environ)}
    assert set(rows) == {f"STREAM_APP_{n.upper()}" for n in Settings.model_fields}
    assert rows["STREAM_APP_PARTITIONS"][1:3] == ("4", "environment")
    assert rows["STREAM_APP_TIMEZONE"][1:3] == ("UTC", "default")
    assert rows["STREAM_APP_API_TOKENS"].value == "********"
    assert rows["STREAM_APP_REDIS_URL"].value == "redis://:********@db:6379/0"
    assert not any("sekret" in r.value or "hunter2" in r.value for r in rows.values())


def test_the_example_settings_file_lists_every_setting_with_its_default() -> None:
    """``config/stream-app.env`` is what ``stream-app settings --example`` prints, and
    read back as an environment it gives the default settings."""
    from stream_app.settings import Settings, example_file

    text = (REPO / "config/stream-app.env").read_text()
    assert text == example_file(), "regenerate: stream-app settings --example > config/..."
    values = dict(line.split("=", 1) for line in text.splitlines()
                  if line and not line.startswith("#"))
    assert len(values) == len(Settings.model_fields) - 1  # the data directory: per user
    read = Settings(**{k.removeprefix("STREAM_APP_").lower(): v for k, v in values.items()})
    assert read == Settings(data_dir=read.data_dir)
