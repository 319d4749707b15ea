"""The bench's table, its ratios and goals, and its JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import orjson

from stream_app.dev.bench.config import Figures


def ratios(f: Figures) -> None:
    bare = f.bare_faust.get("cpu_us_per_event")
    if bare and f.worker:
        f.worker["cpu_ratio_to_bare_faust"] = f.worker["cpu_us_per_event"] / bare
        f.worker["rate_ratio_to_bare_faust"] = (f.worker["events_per_second"]
                                                / f.bare_faust["events_per_second"])
        f.worker["rate_ratio_to_aiokafka"] = (f.worker["events_per_second"]
                                              / f.aiokafka["events_per_second"])
    if bare and f.aiokafka:
        f.bare_faust["cpu_ratio_to_aiokafka"] = bare / f.aiokafka["cpu_us_per_event"]
    if bare and f.bare_faust_patched:
        f.bare_faust_patched["cpu_ratio_to_bare_faust"] = (
            f.bare_faust_patched["cpu_us_per_event"] / bare)


GOALS = (("worker CPU per event vs bare Faust", "worker", "cpu_ratio_to_bare_faust", 1.0),
         ("worker RSS (MiB)", "worker", "rss_mib", 250.0),
         ("reader p99 (ms), 366 days, keep-alive", "reader", "p99_ms", 5.0),
         ("reader p99 (ms), 366 days, a new connection per request",
          "reader_new_connection", "p99_ms", 10.0),
         ("end to end p99 (ms), fresh load, right after the workload (catch-up)",
          "end_to_end", "p99_ms", 250.0),
         ("end to end max (ms), fresh load", "end_to_end", "max_ms", 1000.0),
         ("end to end p99 (ms), replayed load, probes on one contact", "end_to_end_replay",
          "p99_ms", 250.0),
         ("end to end max (ms), replayed load", "end_to_end_replay", "max_ms", 1000.0),
         ("worst event loop lag (ms)", "end_to_end", "worst_loop_lag_ms", 100.0),
         ("worst loop lag with the loop thread on the CPU (ms)", "end_to_end",
          "worst_loop_lag_busy_ms", 100.0),
         ("restart to first event (s)", "restart", "restart_to_first_event_s", 30.0),
         ("scale-out CPU per event growth (%), 1 -> 2 workers", "scale_out",
          "cpu_growth_percent", 10.0),
         ("restart with the large state to first event (s)", "state",
          "restart_to_first_event_s", 30.0),
         ("failover, SIGKILL to every partition counted on the survivor (s), best of "
          "standby 0 / 1", "failover", "best_kill_to_every_partition_counted_s", 10.0))
"""Each goal: what, the part of the figures, the figure, the bound (issue 29's)."""


def report(f: Figures) -> str:
    """The figures as a Markdown table (what docs/benchmarks.md shows)."""
    def row(what: str, part: dict[str, float]) -> str:
        if not part:
            return f"| {what} | - | - | - |"
        return (f"| {what} | {part['events_per_second']:,.0f} | "
                f"{part['cpu_us_per_event']:,.0f} | "
                f"{part['cpu_us_per_event'] / f.bare_faust['cpu_us_per_event']:.2f}x |")

    lines = [f"bench {f.date}: {f.events:,} events, {f.config['partitions']} partitions, "
             f"{f.config['environments']} environments, {f.config['contacts']:,} contacts",
             "", "| consumer | events/s | CPU µs/event | CPU vs bare Faust |",
             "|---|---|---|---|", row("plain aiokafka + orjson.loads", f.aiokafka),
             row("bare Faust agent (decode only)", f.bare_faust),
             row("same, with this project's Faust patches and uvloop",
                 f.bare_faust_patched),
             row("worker end to end", f.worker), ""]
    if f.worker:
        lines.append(f"worker RSS {f.worker['rss_mib']:.0f} MiB with "
                     f"{f.worker['contacts']:,.0f} contacts")
    if f.reader:
        lines.append(f"reader, 366-day range, {f.reader['clients']:.0f} clients: "
                     f"{f.reader['requests_per_second']:,.0f} req/s, p50 "
                     f"{f.reader['p50_ms']:.1f} ms, p99 {f.reader['p99_ms']:.1f} ms")
    if f.reader_uncached:
        u = f.reader_uncached
        lines.append(f"reader, 2,000 different 366-day ranges (uncached): "
                     f"{u['requests_per_second']:,.0f} req/s, p50 {u['p50_ms']:.1f} ms, "
                     f"p99 {u['p99_ms']:.1f} ms")
    if f.reader_new_connection:
        n = f.reader_new_connection
        lines.append(f"reader, 366-day range, a new connection per request: "
                     f"{n['requests_per_second']:,.0f} req/s, p50 {n['p50_ms']:.1f} ms, "
                     f"p99 {n['p99_ms']:.1f} ms")
    if f.live:
        v = f.live
        lines.append(f"live streams: {v['streams']:,.0f} open while counters change at "
                     f"{v['rate']:,.0f} events/s: delivery p50 {v['p50_ms']:.0f} ms, p99 "
                     f"{v['p99_ms']:.0f} ms, {v['pushes_per_stream_per_second']:.1f} "
                     f"pushes/s per stream; reader CPU {v['reader_cpu_ms_per_second']:.0f} ms/s "
                     f"({v['reader_cpu_us_per_stream_per_second']:.0f} µs/s per stream), idle "
                     f"{v['reader_idle_cpu_ms_per_second']:.1f} ms/s, RSS "
                     f"{v['reader_rss_mib']:.0f} MiB")
    if f.end_to_end:
        e = f.end_to_end
        lines.append(f"end to end under {e['background_events_per_second']:,.0f} events/s: "
                     f"p50 {e.get('p50_ms', 0):.0f} ms, p99 {e.get('p99_ms', 0):.0f} ms, "
                     f"max {e.get('max_ms', 0):.0f} ms (slowest 5: "
                     f"{e.get('fifth_slowest_ms', 0):.0f} to {e.get('max_ms', 0):.0f} ms), "
                     f"{e['not_visible_in_10s']:.0f} of {e['probes']:.0f} not visible in 10 s; "
                     f"worst event loop lag {e.get('worst_loop_lag_ms', 0):.0f} ms (the "
                     f"loop thread on the CPU for at most "
                     f"{e.get('worst_loop_lag_busy_ms', 0):.0f} ms of a lag; longest "
                     f"garbage collection {e.get('worst_gc_pause_ms', 0):.0f} ms)")
    if f.end_to_end_replay:
        e = f.end_to_end_replay
        lines.append(f"end to end under {e['background_events_per_second']:,.0f} replayed "
                     f"events/s, probes on one contact: p50 {e.get('p50_ms', 0):.0f} ms, "
                     f"p99 {e.get('p99_ms', 0):.0f} ms, max {e.get('max_ms', 0):.0f} ms "
                     f"(slowest 5: {e.get('fifth_slowest_ms', 0):.0f} to "
                     f"{e.get('max_ms', 0):.0f} ms), "
                     f"{e['not_visible_in_10s']:.0f} of {e['probes']:.0f} not visible in 10 s")
    for block in f.loop_blocks:
        lines.append(f"  loop held {block}")
    if f.restart:
        lines.append(f"restart with that state ({f.restart['state_disk_mib']:.0f} MiB on disk) "
                     f"to the first new event counted: "
                     f"{f.restart['restart_to_first_event_s']:.1f} s")
    if f.scale_out:
        o = f.scale_out
        one, two = o["workers_1"], o["workers_2"]
        lines.append(f"scale-out on {o['partitions']} partitions: 1 worker "
                     f"{one['cpu_us_per_event']:,.0f} µs/event, 2 workers "
                     f"{two['cpu_us_per_event']:,.0f} µs/event "
                     f"({o['cpu_growth_percent']:+.1f}%), keyed partitions per worker "
                     f"{two['keyed_partitions_per_worker']}, events per worker "
                     f"{two['events_per_worker']}")
    if f.state:
        lines.append(f"state: {f.state['contacts']:,.0f} contacts, worker RSS "
                     f"{f.state['rss_mib']:.0f} MiB, {f.state['state_disk_mib']:.1f} MiB on "
                     f"disk; restart to the first new event counted: "
                     f"{f.state['restart_to_first_event_s']:.1f} s")
    if f.failover:
        o = f.failover
        for standby in (0, 1):
            r = o[f"standby_{standby}"]
            lines.append(f"failover, {o['contacts']:,.0f} contacts on 2 workers, one SIGKILLed "
                         f"(session timeout {o['session_timeout_s']:g} s, standby replicas "
                         f"{standby}): survivor assigned after "
                         f"{r['kill_to_survivor_assigned_s']:.1f} s, counting on every "
                         f"partition after {r['kill_to_every_partition_counted_s']:.1f} s")
    lines.append("")
    for what, part, key, goal in GOALS:
        value = getattr(f, part).get(key)
        verdict = "-" if value is None else ("met" if value <= goal else "NOT met")
        shown = "-" if value is None else f"{value:,.2f}"
        lines.append(f"goal {what} ≤ {goal:g}: {shown} ({verdict})")
    return "\n".join(lines)


def write_json(f: Figures, path: Path) -> None:
    path.write_bytes(orjson.dumps(asdict(f), option=orjson.OPT_INDENT_2))
