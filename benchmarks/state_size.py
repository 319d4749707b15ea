"""The join state's footprint: N contacts of outbound history in Faust's RocksDB store
(``rocksdict``, as the worker opens it) versus the same rows held in memory.

Usage: python -m benchmarks.state_size [--contacts 1000000] [--calls-per-contact 4]

Rows are encoded exactly as the worker's ``history`` table stores them (JSON lists of
``OutboundRef``); prints disk bytes, process RSS growth and write rate.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson
from rocksdict import Options, Rdict

from stream_app.core.domain.matching import OutboundRef
from stream_app.core.domain.records import history_row


def rss_mib() -> float:
    """The process's current resident set (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rows(contacts: int, calls: int):  # type: ignore[no-untyped-def]
    for c in range(contacts):
        key = f"env-{c % 5}\x1f+5511{c:09d}".encode()
        refs = [OutboundRef(1.7e9 + i * 86_400.0, 1.7e9 + i * 86_400.0, f"agent-{i % 7}",
                            f"call-{c}-{i}") for i in range(calls)]
        yield key, orjson.dumps(history_row(refs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--calls-per-contact", type=int, default=4)
    args = parser.parse_args()
    before = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        db = Rdict(str(Path(tmp) / "history"), Options(raw_mode=True))
        began = time.perf_counter()
        for key, value in rows(args.contacts, args.calls_per_contact):
            db[key] = value
        db.flush()
        seconds = time.perf_counter() - began
        db.close()
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    rocks_rss = rss_mib() - before
    memory = dict(rows(args.contacts, args.calls_per_contact))
    mem_bytes = sys.getsizeof(memory) + sum(sys.getsizeof(k) + sys.getsizeof(v)
                                            for k, v in memory.items())
    print(f"{args.contacts:,} contacts x {args.calls_per_contact} outbound calls "
          f"({sum(len(v) for v in memory.values()) / 2**20:.0f} MiB of encoded rows)")
    print(f"  rocksdb: {disk / 2**20:.0f} MiB on disk, RSS +{rocks_rss:.0f} MiB, "
          f"{args.contacts / seconds:,.0f} contacts/s written")
    print(f"  memory:// equivalent (a dict of the same encoded rows): "
          f"{mem_bytes / 2**20:.0f} MiB of Python objects (decoded rows take several times "
          f"more)")


if __name__ == "__main__":
    main()
