"""Local Apache Kafka (KRaft) and Redis for development and tests, without Docker.

Kafka is the official broker: its jars come from Maven Central through ``mvn`` (see
``config/kafka/pom.xml``, shipped in the wheel as ``stream_app.config``) into a cache
outside git, once, and run with ``java``.
Redis is Debian's ``redis-server``, installed with apt when missing.

Invariants: ``up`` is idempotent (a port that already answers is left alone);
``down`` stops only processes whose pid files this module wrote; every wait is
bounded and a failure quotes the tail of the service's log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

from platformdirs import user_state_dir

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_CONFIG = Path(str(files("stream_app.config") / "kafka"))
REDIS_CONFIG = Path(str(files("stream_app.config") / "redis" / "redis.conf"))
"""The broker's pom, properties and log configuration: package data, so an installed
wheel starts Kafka from wherever it is installed (a regular directory on disk)."""
START_TIMEOUT_SECONDS = 90.0


class ServiceError(RuntimeError):
    """A local service could not be installed or started."""


@dataclass(frozen=True)
class Layout:
    """Where the local services keep their files."""

    state_dir: Path
    cache_dir: Path
    kafka_port: int = 9092
    redis_port: int = 6379

    @classmethod
    def default(cls, kafka_port: int = 9092, redis_port: int = 6379) -> Layout:
        # In a checkout beside the code (``.services/``); installed, in the user's state
        # directory, never inside site-packages.
        checkout = (REPO_ROOT / "pyproject.toml").is_file()
        fallback = REPO_ROOT / ".services" if checkout else Path(
            user_state_dir("stream-app")) / "services"
        state = Path(os.environ.get("STREAM_APP_SERVICES_DIR", fallback))
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stream-app"
        return cls(state.resolve(), cache, kafka_port, redis_port)

    @property
    def kafka_version(self) -> str:
        text = (KAFKA_CONFIG / "pom.xml").read_text()
        return text.split("<kafka.version>")[1].split("</kafka.version>")[0].strip()

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"

    def port(self, name: str) -> int:
        return self.kafka_port if name == "kafka" else self.redis_port

    def pid_file(self, name: str) -> Path:
        """Per service and port: services on other ports share the state directory."""
        return self.state_dir / f"{name}-{self.port(name)}.pid"

    def log_file(self, name: str) -> Path:
        return self.state_dir / f"{name}-{self.port(name)}.log"


def local_ports(kafka_bootstrap: str, redis_url: str) -> tuple[int, int]:
    """The Kafka and Redis ports the settings name (the defaults, 9092 and 6379, where
    they name none): the local services to start are the ones the settings point at."""
    from urllib.parse import urlsplit

    first = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    kafka = int(first[1]) if len(first) == 2 and first[1].isdigit() else 9092
    return kafka, urlsplit(redis_url).port or 6379


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def up(layout: Layout) -> dict[str, str]:
    """Start Kafka and Redis unless their ports already answer; return what happened."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    return {"redis": _redis_up(layout), "kafka": _kafka_up(layout)}


SERVICES = ("kafka", "redis")


def down(layout: Layout, only: Sequence[str] = SERVICES, everything: bool = False
         ) -> dict[str, str]:
    """Stop the processes this module started (by pid file), nothing else: the services
    ``only`` on the layout's ports, or (``everything``) every node of ours, whatever its
    port (a cluster's too)."""
    if everything:
        return {f"{name} {node.port(name)}": stop(node, name)
                for name, node in recorded(layout)} or {"services": "none of ours running"}
    return {name: stop(layout, name) for name in only}


def recorded(layout: Layout) -> list[tuple[str, Layout]]:
    """Every service whose pid file is in the state directory, as (name, its layout)."""
    found = []
    for path in sorted(layout.state_dir.glob("*.pid")):
        name, _, port = path.stem.partition("-")
        if name in SERVICES and port.isdigit():
            node = (replace(layout, kafka_port=int(port)) if name == "kafka" else
                    replace(layout, redis_port=int(port)))
            found.append((name, node))
    return found


def start(layout: Layout, name: str) -> str:
    """Start one service (``kafka`` or ``redis``) unless its port already answers."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    return {"kafka": _kafka_up, "redis": _redis_up}[name](layout)


def send_signal(layout: Layout, name: str, sig: int) -> int | None:
    """Send ``sig`` to a service this module started; return its pid (None if it is not
    running). Waits until the process is gone when ``sig`` ends it (fault injection)."""
    pid = live_pid(layout, name)
    if pid is None:
        return None
    os.killpg(pid, sig)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and port_open(
            layout.kafka_port if name == "kafka" else layout.redis_port):
        time.sleep(0.05)
    _reap(pid)
    return pid


def _reap(pid: int) -> None:
    """Collect a child's exit status (our own child when started in this process)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.05)


def status(layout: Layout, only: Sequence[str] = SERVICES, everything: bool = False
           ) -> dict[str, str]:
    nodes = [(name, layout) for name in only]
    if everything:
        nodes += [n for n in recorded(layout) if n[1].port(n[0]) != layout.port(n[0])]
    result = {}
    for name, node in nodes:
        pid, port = live_pid(node, name), node.port(name)
        state = "up" if port_open(port) else "down"
        label = name if node is layout else f"{name} {port}"
        result[label] = f"{state} on 127.0.0.1:{port}" + (f" (pid {pid})" if pid else "")
    return result


def _redis_up(layout: Layout) -> str:
    if port_open(layout.redis_port):
        return f"already answering on {layout.redis_port}"
    binary = shutil.which("redis-server") or apt_install("redis-server", "redis-server")
    data = layout.state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    command = [binary, str(REDIS_CONFIG), "--port", str(layout.redis_port), "--bind",
               "127.0.0.1", "--dir", str(data), "--daemonize", "no"]
    spawn(layout, "redis", command)
    wait_for_port(layout, "redis", layout.redis_port)
    return f"started on {layout.redis_port}"


def _kafka_up(layout: Layout) -> str:
    if port_open(layout.kafka_port):
        return f"already answering on {layout.kafka_port}"
    libs = fetch_kafka_jars(layout)
    properties = _write_kafka_properties(layout)
    data_dir = layout.state_dir / f"kafka-{layout.kafka_port}"
    classpath = f"{libs}/*"
    if not (data_dir / "meta.properties").exists():
        cluster_id = run_java(classpath, "kafka.tools.StorageTool", "random-uuid").strip()
        run_java(classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
              "-c", str(properties), "--ignore-formatted")
    spawn(layout, "kafka", kafka_command(classpath, properties))
    wait_for_port(layout, "kafka", layout.kafka_port)
    return f"started Apache Kafka {layout.kafka_version} on {layout.kafka_port}"


def kafka_command(classpath: str, properties: Path, heap: str = "1g") -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("java is not on PATH: install a JDK 17+ (apt-get install "
                           "openjdk-17-jre-headless)")
    return [java, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={KAFKA_CONFIG / 'log4j2.yaml'}",
            "-cp", classpath, "kafka.Kafka", str(properties)]


def fetch_kafka_jars(layout: Layout) -> Path:
    libs = layout.kafka_libs
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn") or apt_install("maven", "mvn")
    logger.info("fetching Apache Kafka %s jars with Maven into %s", layout.kafka_version, libs)
    staging = libs.with_name(f"libs.{uuid.uuid4().hex}")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(KAFKA_CONFIG / "pom.xml"),
         "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
         "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"mvn could not fetch the Kafka jars:\n{_tail(result.stdout)}")
    staging.joinpath(".complete").touch()
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    return libs


def _write_kafka_properties(layout: Layout) -> Path:
    template = (KAFKA_CONFIG / "server.properties").read_text()
    text = template.format(port=layout.kafka_port, controller_port=layout.kafka_port + 1,
                           data_dir=layout.state_dir / f"kafka-{layout.kafka_port}")
    path = layout.state_dir / f"kafka-{layout.kafka_port}.properties"
    path.write_text(text)
    return path


def run_java(classpath: str, main: str, *args: str) -> str:
    result = subprocess.run(["java", "-cp", classpath, main, *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"{main} {' '.join(args[:1])} failed:\n"
                           f"{_tail(result.stdout + result.stderr)}")
    return result.stdout


def apt_install(package: str, binary: str) -> str:
    logger.info("installing %s with apt-get", package)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(command)} failed (are you root?):\n"
                               f"{_tail(result.stdout + result.stderr)}")
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found is None:
        raise ServiceError(f"{package} installed but {binary} is not on PATH")
    return found


def spawn(layout: Layout, name: str, command: list[str]) -> None:
    log = layout.log_file(name).open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    layout.pid_file(name).write_text(str(process.pid))


def wait_for_port(layout: Layout, name: str, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if not _started_and_running(layout, name):
            break
        time.sleep(0.2)
    raise ServiceError(f"{name} did not accept connections on {port}; "
                       f"log tail ({layout.log_file(name)}):\n"
                       f"{_tail(layout.log_file(name).read_text(errors='replace'))}")


def _started_and_running(layout: Layout, name: str) -> bool:
    """The process this module just spawned has not exited (it may still be exec'ing,
    so its command line is not checked here)."""
    try:
        pid = int(layout.pid_file(name).read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


COMMAND_MARKS = {"kafka": "kafka.Kafka", "redis": "redis-server"}
"""What the command line of each service's process contains."""


def live_pid(layout: Layout, name: str) -> int | None:
    """The pid in ``name``'s pid file, if that process still runs and is still ours: a
    pid is reused after a reboot or a crash, and must never get a signal meant for the
    service (checked against its command line and our state directory)."""
    try:
        pid = int(layout.pid_file(name).read_text().strip())
        os.kill(pid, 0)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    # Kafka's command names its properties file in our state directory; redis-server
    # starts as "redis-server --port PORT …" and then retitles itself
    # "redis-server 127.0.0.1:PORT".
    mine = (re.escape(str(layout.state_dir)) if name == "kafka" else
            rf"(--port |:){layout.redis_port}(?!\d)")
    ours = COMMAND_MARKS[name] in command and re.search(mine, command) is not None
    return pid if ours else None


def stop(layout: Layout, name: str) -> str:
    pid = live_pid(layout, name)
    layout.pid_file(name).unlink(missing_ok=True)
    if pid is None:
        return "not running (nothing of ours to stop)"
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _gone(pid):
            return f"stopped (pid {pid})"
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return f"killed (pid {pid})"


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited; a child of this very process (tests start services
    in-process) is reaped, or it would linger as a zombie that ``kill(pid, 0)`` finds."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done != 0
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
