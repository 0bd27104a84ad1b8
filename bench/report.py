"""The machine a run happened on, and the run's figures as markdown (docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def git_commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} dirty" if dirty else head


def loadavg() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def machine(*, pg_version: str, redis_version: str, busy_before: float) -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if "MemTotal" in line
        ),
        0,
    )
    return {
        "CPUs (nproc)": str(len(os.sched_getaffinity(0))),
        "CPU model": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "PostgreSQL": pg_version,
        "Redis": redis_version,
        "load average at start": loadavg(),
        "CPU busy before the bench started anything": f"{busy_before:.0f} % of one core",
    }


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- markdown --------------------------------------------------------------------------------


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ladder_rows(rows: list[dict]) -> list[list]:
    return [
        [
            r["rate"],
            r["orders"],
            r["sent_rate"],
            r["delivered_rate"],
            r["p50"],
            r["p95"],
            r["p99"],
            r["http_p50"],
            r["http_p99"],
            r["errors"],
            r["undelivered"],
            r.get("stop") or "",
        ]
        for r in rows
    ]


LADDER_HEADERS = [
    "offered /s",
    "orders",
    "sent /s",
    "delivered /s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "webhook HTTP p50 ms",
    "webhook HTTP p99 ms",
    "errors",
    "undelivered",
    "stopped because",
]


def render(res: dict) -> str:
    out: list[str] = []
    add = out.append
    meta = res["meta"]
    add("# Kami benchmarks\n")
    add(
        "Produced by `make bench` (`bench/load.py`); every figure below comes from one run of "
        "it against the production shape on a throw-away PostgreSQL database. Re-run it to "
        "refresh this page; timings are never asserted in tests. Where the time goes, what "
        "was changed for speed and what would close the gap to the targets: "
        "[performance.md](performance.md).\n"
    )
    if meta.get("quick"):
        add(
            "**This is a `--quick` smoke run: short phases and few rates. Its figures show the "
            "benchmark works, not what Kami can do; run `make bench` for those.**\n"
        )
    if meta.get("busy_warning"):
        add(f"**{meta['busy_warning']}**\n")
    add("## Run\n")
    add(table(["", ""], [[k, v] for k, v in meta["run"].items()]))
    add("\n## Machine\n")
    add(table(["", ""], [[k, v] for k, v in meta["machine"].items()]))
    add("\n## Targets\n")
    add(table(["figure", "target", "measured", "met"], res.get("targets", [])))
    add("\n## Set-up\n")
    add(table(["", ""], [[k, v] for k, v in res.get("setup", {}).items()]))

    ladder = res.get("ladder", {})
    if ladder:
        add("\n## Webhook → delivered, open loop at fixed arrival rates\n")
        add(
            "Pending orders are made beforehand with `order_create`; the load generator (its "
            "own process) signs each `checkout.session.completed` event right before posting "
            "it at the offered rate, whatever the server does. Latency is "
            "`orders_order.delivered_at` minus the moment the webhook was sent (one clock). "
            "*delivered /s* is the phase's deliveries over the longer of its sending and its "
            "delivering span: the offered rate while Kami keeps up, its own rate once it falls "
            "behind. *undelivered*: answered 200 but not delivered when the phase's drain time "
            "ran out (the backlog is then purged). The ladder stops at the first rate "
            "delivered below 90 % of offered, with p99 over 2 s, with errors, or not drained "
            "in time.\n"
        )
        for kind, title in (("hot", "One hot product"), ("spread", "Spread over ten products")):
            if ladder.get(kind):
                add(f"\n### {title}\n")
                add(table(LADDER_HEADERS, ladder_rows(ladder[kind])))
                lags = [r.get("lag_p99") for r in ladder[kind]]
                add(
                    f"\nLoad generator schedule lag p99 per rate (ms): "
                    f"{', '.join(fmt(x) for x in lags)}"
                )

    sat = res.get("saturation")
    if sat:
        add("\n## Saturation\n")
        add(
            f"{fmt(sat['orders'])} webhooks for the hot product posted as fast as "
            f"{sat['concurrency']} connections allow.\n"
        )
        add(
            table(
                ["", ""],
                [
                    ["delivered orders /s (first → last `delivered_at`)", sat["delivered_rate"]],
                    ["webhooks accepted /s", sat["accept_rate"]],
                    ["delivered / sent", f"{sat['delivered']} / {sat['sent_ok']}"],
                    ["webhook errors", sat["errors"]],
                    ["latency p50 / p99 ms", f"{fmt(sat['p50'])} / {fmt(sat['p99'])}"],
                    [
                        "webhook HTTP p50 / p99 ms",
                        f"{fmt(sat['http_p50'])} / {fmt(sat['http_p99'])}",
                    ],
                    ["bounded (not all delivered in time)", "yes" if sat["bounded"] else "no"],
                ],
            )
        )
        cpu = res.get("cpu")
        if cpu:
            add(f"\nCPU during the saturation run ({fmt(cpu['seconds'])} s), % of one core:\n")
            add(table(["process", "% of one core"], [[k, v] for k, v in cpu["groups"].items()]))

    loop = res.get("closed_loop")
    if loop:
        add("\n## Closed loop\n")
        add(
            f"{loop['buyers']} buyers for {fmt(loop['seconds'])} s, each in turn: "
            "`POST /api/v1/orders`, sign and post the webhook, poll "
            "`GET /api/v1/orders/{no}?email=` every 10 ms until the key is in the answer.\n"
        )
        add(
            table(
                ["", ""],
                [
                    ["orders /s", loop["rate"]],
                    ["orders completed", loop["completed"]],
                    ["pay → key readable p50 / p95 ms", f"{fmt(loop['p50'])} / {fmt(loop['p95'])}"],
                    [
                        "checkout HTTP p50 / p95 ms",
                        f"{fmt(loop['checkout_p50'])} / {fmt(loop['checkout_p95'])}",
                    ],
                    ["polls per order, mean", loop["polls_mean"]],
                    ["errors", loop["errors"] or "none"],
                ],
            )
        )

    lookups = res.get("lookups")
    if lookups:
        add("\n## Order lookup, one buyer, sequential\n")
        add(
            table(
                ["credential", "lookups", "p50 ms", "p95 ms", "answers"],
                [[name, v["n"], v["p50"], v["p95"], v["statuses"]] for name, v in lookups.items()],
            )
        )

    race = res.get("race")
    if race:
        add("\n## Race: buyers for a product with few keys\n")
        add(
            f"{race['buyers']} concurrent checkouts over HTTP for a product with "
            f"{race['keys']} keys, then every order that was created is paid.\n"
        )
        add(table(["", ""], [[k, v] for k, v in race["figures"].items()]))

    replay = res.get("replays")
    if replay:
        add("\n## Replayed webhooks\n")
        add(
            f"{replay['orders']} events, each posted {replay['copies']} times at once "
            "(same event id).\n"
        )
        add(table(["", ""], [[k, v] for k, v in replay["figures"].items()]))

    floor = res.get("floor")
    if floor:
        add("\n## Bare-SQL floor\n")
        add(
            "The delivery transaction as bare SQL with psycopg2 (take a key with `FOR UPDATE "
            "SKIP LOCKED`, mark it sold, order delivered, one delivery row, two ledger rows, "
            "commit), one connection per thread, same database, hot product.\n"
        )
        add(
            table(
                ["threads", "delivered", "seconds", "deliveries /s", "errors"],
                [
                    [f["threads"], f["delivered"], f["seconds"], f["rate"], "; ".join(f["errors"])]
                    for f in floor
                ],
            )
        )
        alone = res.get("task_alone")
        if alone:
            add(
                "\nKami's own delivery transaction (`payment_event_process`, the code the "
                "Celery task runs) in threads of the bench process, over events already in the "
                "inbox: no HTTP, no broker in the way.\n"
            )
            add(
                table(
                    ["threads", "delivered", "seconds", "deliveries /s"],
                    [[f["threads"], f["delivered"], f["seconds"], f["rate"]] for f in alone],
                )
            )
        if res.get("ratio"):
            add(f"\n{res['ratio']}")

    final = res.get("final")
    if final:
        add("\n## After the run\n")
        add(table(["", ""], [[k, v] for k, v in final.items()]))
    if res.get("step seconds"):
        add("\n## Where the run's time went\n")
        add(table(["step", "seconds"], [[k, v] for k, v in res["step seconds"].items()]))
    if res.get("failure"):
        add(f"\n## The run stopped early\n\n```\n{res['failure']}\n```")
    add(HOW_TO)
    return "\n".join(out)


HOW_TO = """
## How to run

    make bench                                   # the full run (~8 min), rewrites this page
    make bench BENCH_ARGS="--pool threads --concurrency 8"
    .venv/bin/python bench/load.py --quick       # smoke test, 1–2 min, prints only

Flags of `bench/load.py`: `--quick`; `--pool prefork|threads|gevent|solo` and
`--concurrency N` (the Celery worker); `--web-workers N` (gunicorn sync workers, default 5);
`--mail-queue auto|none|NAME` (the side-effect queue of delivery emails and alerts: `auto`,
the default, gives Kami's `<task queue>-notify` its own worker as in production, sized by
`--mail-pool` and `--mail-concurrency`, default threads × 4; `none` lets the task worker
consume it too, as `make run` does); `--rates 25,50,…`, `--phase-seconds S`, `--phase-max-orders N`
(the open-loop ladder); `--saturation-orders N`; `--buyers N`, `--closed-loop-seconds S`;
`--hot-keys N`; `--steps ladder,saturation,closed,lookup,race,replay,floor` (a subset, or
`none` to start, warm up and stop); `--output PATH` (`-` prints only); `--postgres URL`,
`--redis URL`. The run refuses settings that could hold more than 30 PostgreSQL connections.

The modules: `bench/load.py` runs the steps; `bench/stack.py` starts and stops gunicorn and
Celery; `bench/loadgen.py` is the load generator (its own process, asyncio, raw HTTP/1.1);
`bench/seed.py` seeds the shop and makes orders with `order_create`; `bench/floor.py` is the
bare-SQL floor; `bench/cpu.py` reads `/proc`; `bench/report.py` writes this page. Two older,
narrower benchmarks remain: `bench/payment_to_key.py` (in-process payment → key) and
`bench/risk_overhead.py` (what risk rules cost a checkout). Two more write the sections at the
end of this page, which `make bench` keeps: `bench/push_latency.py` (webhook → "delivered" on
the order page's WebSocket, with and without Redis, ~2 min) and `bench/priority.py` (the
priority lane under a flood, ~5 min).
"""


# --- sections other benchmarks own on the same page -----------------------------------------
# ``bench/priority.py`` and ``bench/push_latency.py`` write their figures into docs/benchmarks.md
# between markers; ``make bench`` rewrites the rest of the page and keeps those sections.


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section {name} -->", f"<!-- /section {name} -->"


def sections_of(text: str) -> list[str]:
    """Every marked section of ``text``, markers included, in order."""
    out, pos = [], 0
    while (start := text.find("<!-- section ", pos)) != -1:
        name = text[start + len("<!-- section ") : text.index(" -->", start)]
        end_marker = _markers(name)[1]
        end = text.find(end_marker, start)
        if end == -1:
            break
        out.append(text[start : end + len(end_marker)])
        pos = end + len(end_marker)
    return out


def keep_sections(old: str, new: str) -> str:
    """``new`` with the marked sections of ``old`` that ``new`` lacks appended."""
    kept = [s for s in sections_of(old) if s.split(" -->", 1)[0] not in new]
    return new.rstrip("\n") + "".join(f"\n\n{s}" for s in kept) + "\n" if kept else new


def write_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` in ``path`` as section ``name``, replacing an earlier one or appending."""
    start, end = _markers(name)
    section = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n"
    path.write_text(text)
