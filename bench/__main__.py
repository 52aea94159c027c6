"""`python -m bench`: guanwei against bare aiohttp and WeRoBot, micro-benchmarks, the retry load test.

    python -m bench [--requests 3000] [--concurrency 32] [--quick] [--out bench/RESULTS.md]

One after another on loopback ports 18700–18719, the same payloads and the same client (bench.common):
(a) bare aiohttp answering `success`, (b) guanwei on the embedded default (SQLite, 1 worker),
(c) WeRoBot under its default server (Waitress), then guanwei on PostgreSQL + Redis with 2 workers.
The load generator runs in this process, each server in its own: they share the machine's cores.
Every loop is bounded in count and time (bench.common.MAX_REQUESTS, MAX_SECONDS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import servers
from bench.common import Payloads, closed_loop, fixed_rate, machine, rss_mb

OUT = Path(__file__).with_name("RESULTS.md")


async def measure(server: servers.Server, payloads: Payloads, requests: int, concurrency: int,
                  *, rate_run: bool = False, rss_to: int = 0) -> dict[str, object]:
    row: dict[str, object] = {"server": server.name}
    try:
        row["cold_start_s"] = await servers.wait_answered(server)
        row["rss_start_mb"] = [round(rss_mb(p), 1) for p in server.pids()]
        r = await closed_loop(server.url, payloads.push, requests=requests, concurrency=concurrency,
                              max_seconds=60, warmup=20)
        row["closed"] = r.summary()
        row["closed_statuses"] = r.statuses
        sent = r.summary()["requests"]
        if rate_run:
            f = await fixed_rate(server.url, lambda n: payloads.push(1_000_000 + n), rate=200, seconds=10)
            row["rate200"] = f.summary()
            row["rate200_statuses"] = f.statuses
            sent += f.summary()["requests"]
        if rss_to and sent < rss_to:
            await closed_loop(server.url, lambda n: payloads.push(2_000_000 + n), requests=int(rss_to - sent),
                              concurrency=concurrency, max_seconds=110)
        if rss_to:
            row["rss_after_mb"] = [round(rss_mb(p), 1) for p in server.pids()]
            row["messages_before_rss"] = rss_to
    finally:
        server.stop()
    return row


async def servers_part(requests: int, concurrency: int) -> dict[str, object]:
    payloads = Payloads()
    out: dict[str, object] = {}
    out["bare"] = await measure(servers.start_bare(servers.next_port()), payloads, requests, concurrency)
    workdir, env, _ = await servers.prepare_guanwei()
    out["guanwei"] = await measure(servers.start_guanwei(servers.next_port(), workdir, env), payloads, requests,
                                   concurrency, rate_run=True, rss_to=10_000)
    out["werobot"] = await measure(servers.start_werobot(servers.next_port()), payloads, requests, concurrency)
    pg_name = f"guanwei_bench_{secrets.token_hex(3)}"
    try:
        url = await servers.create_pg_database(pg_name)
        workdir, env, _ = await servers.prepare_guanwei(url, servers.REDIS_URL)
        out["guanwei_pg"] = await measure(servers.start_guanwei(servers.next_port(), workdir, env, workers=2),
                                          payloads, requests, concurrency, rate_run=True)
    finally:
        await servers.drop_pg_database(pg_name)
        servers.flush_redis_db13()
    return out


def _f(value: object, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(results: dict[str, object]) -> str:
    m, s, micro, load = results["machine"], results["servers"], results["micro"], results["load"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['date']} with `python -m bench` ({results['seconds']:.0f} s). Machine: {m['cores']} cores "
        f"({m['cpu']}), {m['memory']} RAM, Python {m['python']}, {m['os']}. **The load generator (an aiohttp "
        f"client in the bench process) and the server under test run in separate processes but share the same "
        f"{m['cores']} cores**, so every figure below is lower than a server would reach on a machine of its own.",
        "",
        f"Load: realistic mixed WeChat plain-mode pushes (85% texts from tests/data/dev.jsonl, voice with "
        f"recognition, images, locations, follow events), unique MsgIds, 1,000 followers, each request signed "
        f"at send time (fresh timestamp, unique nonce). Closed loop: {results['concurrency']} concurrent "
        f"clients on keep-alive connections, up to {results['requests']:,} requests (60 s cap), after 20 warm-up "
        f"requests. Servers run one after another on loopback ports 18700–18719.",
        "",
        "## Throughput and latency (closed loop)",
        "",
        "| server | requests | non-200 | throughput (req/s) | p50 (ms) | p99 (ms) | cold start (s) | RSS after start (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "bare": "(a) bare aiohttp, `success`",
        "guanwei": "(b) guanwei, embedded SQLite, 1 worker",
        "werobot": "(c) WeRoBot 1.13.1 on Waitress (default `server='auto'`), fixed text reply",
        "guanwei_pg": "guanwei, PostgreSQL 15 + Redis, `--workers 2`",
    }
    for key, label in names.items():
        row = s[key]
        c = row["closed"]
        lines.append(f"| {label} | {c['requests']:,} | {c['non_200'] + c['errors']:,} | {_f(c['rps'])} | "
                     f"{_f(c['p50_ms'])} | {_f(c['p99_ms'])} | {_f(row['cold_start_s'], 2)} | "
                     f"{' + '.join(_f(x) for x in row['rss_start_mb'])} |")
    g, b, w, gp = (s[k]["closed"]["rps"] for k in ("guanwei", "bare", "werobot", "guanwei_pg"))
    r200, r200pg = s["guanwei"]["rate200"], s["guanwei_pg"]["rate200"]
    lines += [
        "",
        f"Ratios: guanwei/bare = **{g / b:.3f}×**, guanwei/WeRoBot = **{g / w:.3f}×** (embedded default); "
        f"PostgreSQL + Redis with 2 workers: {gp / b:.3f}× bare, {gp / w:.3f}× WeRoBot.",
        "",
        "## Fixed rate: 200 messages/s for 10 s (open loop, 2,000 pushes)",
        "",
        "| server | sent | 200 | other status / client timeout (10 s) | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in (("guanwei, embedded SQLite", r200), ("guanwei, PostgreSQL + Redis, 2 workers", r200pg)):
        lines.append(f"| {label} | {r['requests']:,} | {r['ok']:,} | {r['non_200'] + r['errors']:,} | "
                     f"{_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {_f(r['max_ms'])} |")
    cls, faq, sw = micro["classifier"], micro["faq"], micro["sweep"]
    rss_after = s["guanwei"]["rss_after_mb"]
    lines += [
        "",
        "## Micro-benchmarks",
        "",
        f"- Classifier (`Classifier.classify`, pinned to CPU {cls['cpu']}): **{cls['rate']:,.0f} messages/s** "
        f"({cls['messages']:,} classifications of the {cls['mean_chars']:.0f}-character-average dev set in "
        f"{cls['seconds']:.2f} s; loading takes {cls['load_s']:.2f} s).",
        "- FAQ match (`bench.faq_match`, 57 messages × 10):",
        "",
        "  | entries | choices | build | mean | p50 | p99 |",
        "  |---:|---:|---:|---:|---:|---:|",
    ]
    for r in faq:
        lines.append(f"  | {r['entries']:,} | {r['choices']:,} | {r['build_s']:.2f} s | {r['mean_us']:,.0f} µs | "
                     f"{r['p50_us']:,.0f} µs | {r['p99_us']:,.0f} µs |")
    lines += [
        "",
        f"- Scheduler sweep (`bot.alerts.build_scheduler`, log contacts writing to /dev/null, SQLite, "
        f"{sw['inquiries']:,} open inquiries bulk-inserted, {sw['due']:,} of them with `next_alert_at` in the past, "
        f"the rest within the next 8 hours; clock a Thursday 10:00 Asia/Shanghai, inside reply hours):",
        f"  - one `Scheduler.sweep()` with nothing due: **{sw['sweep_nothing_due_s'] * 1000:.1f} ms**; the "
        f"due-query alone finding nothing: {sw['query_nothing_due_s'] * 1000:.2f} ms; finding its batch of "
        f"{sw['query_due_batch_rows']}: {sw['query_due_batch_s'] * 1000:.1f} ms (plan: `{sw['due_query_plan']}`);",
        f"  - one `Scheduler.sweep()` with {sw['due']:,} due: **{sw['sweep_due_s']:.2f} s** (it takes a batch of "
        f"500 inquiries, recorded {sw['recorded']:,} alerts, delivered {sw['delivered']})",
        f"  - further sweeps for {sw['drain_s']:.1f} s ({sw['drain_passes']} passes): backlog "
        f"{'drained' if sw.get('drained') else 'not yet drained'}; {sw['alerts']:,} alerts recorded in all.",
        f"- Worker RSS (guanwei, embedded default, /proc/PID/status VmRSS): {_f(s['guanwei']['rss_start_mb'][0])} MB "
        f"after start-up, {_f(rss_after[0])} MB after {s['guanwei']['messages_before_rss']:,} messages. "
        f"PostgreSQL + Redis workers after start-up: {' and '.join(_f(x) for x in s['guanwei_pg']['rss_start_mb'])} MB.",
        f"- Cold start (process launch → first answered signed push, polled every 10 ms): "
        f"{s['guanwei']['cold_start_s']:.2f} s embedded, {s['guanwei_pg']['cold_start_s']:.2f} s PostgreSQL + Redis "
        f"(2 workers); bare aiohttp {s['bare']['cold_start_s']:.2f} s, WeRoBot {s['werobot']['cold_start_s']:.2f} s.",
        "",
        "## Load test with retries (`python -m bench.load`, issue 7)",
        "",
        "| backend | messages | attempts | retried (racing) | accepted | lost | duplicated | 503 | p50 (ms) | p99 (ms) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in load:
        lines.append(f"| {r['backend']} | {r['messages']:,} | {r['attempts']:,} | {r['retried']} "
                     f"({r['concurrent_retries']}) | {r['accepted']:,} | {r['lost']} | {r['duplicated']} | "
                     f"{r['statuses'].get(503, 0)} | {_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {_f(r['seconds'])} |")
    lines += [
        "",
        f"Lost = got a 200 but not in the database; duplicated = stored twice, a second inquiry for the follower, "
        f"or a retry answered differently from the first attempt. A message answered only with 503 is not "
        f"accepted (the platform retries it); concurrency {load[0]['concurrency']}.",
        "",
        "## Goals (issue 8)",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| guanwei ≥ 0.5× bare aiohttp throughput | {g / b:.3f}× | {_met(g / b >= 0.5)} |",
        f"| guanwei ≥ 3× WeRoBot | {g / w:.3f}× | {_met(g / w >= 3)} |",
        f"| p99 ≤ 30 ms at 200 msg/s, embedded default | {_f(r200['p99_ms'])} ms "
        f"({r200['non_200'] + r200['errors']} not answered 200) | {_met(r200['p99_ms'] <= 30 and not r200['non_200'] + r200['errors'])} |",
        f"| classifier ≥ 10,000 msg/s on one core | {cls['rate']:,.0f} msg/s | {_met(cls['rate'] >= 10_000)} |",
        f"| sweep over 100,000 open inquiries ≤ 0.5 s | {sw['sweep_nothing_due_s'] * 1000:.0f} ms nothing due; "
        f"{sw['sweep_due_s']:.2f} s with {sw['due']:,} due | {_met(sw['sweep_nothing_due_s'] <= 0.5)} nothing due, "
        f"{_met(sw['sweep_due_s'] <= 0.5)} with alerts due |",
        f"| RSS ≤ 250 MB | {_f(max(rss_after))} MB after 10,000 messages | {_met(max(rss_after) <= 250)} |",
        f"| cold start ≤ 2 s | {s['guanwei']['cold_start_s']:.2f} s | {_met(s['guanwei']['cold_start_s'] <= 2)} |",
        "",
        "Profiles of every missed goal and the proposed fixes: [FINDINGS.md](FINDINGS.md) (written by hand "
        "from py-spy and pyinstrument runs; not regenerated by `python -m bench`).",
        "",
    ]
    return "\n".join(lines)


async def run_all(requests: int, concurrency: int, load_messages: int) -> dict[str, object]:
    from bench import load, micro

    t0 = time.perf_counter()
    results: dict[str, object] = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                  "requests": requests, "concurrency": concurrency}
    results["servers"] = await servers_part(requests, concurrency)
    results["micro"] = {
        "classifier": await asyncio.to_thread(micro.classifier_rate),
        "faq": await asyncio.to_thread(micro.faq_rates),
        "sweep": await micro.sweep_bench(),
    }
    results["load"] = [await load.run(b, load_messages, 64) for b in ("sqlite", "pg")]
    results["seconds"] = time.perf_counter() - t0
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--load-messages", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    results = asyncio.run(run_all(args.requests, args.concurrency, args.load_messages))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str))
    args.out.write_text(render(results), encoding="utf-8")
    print(render(results))


if __name__ == "__main__":
    main()
