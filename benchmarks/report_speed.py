"""Daily report speed on a synthetic queue_log: our job next to pandas and DuckDB, figures checked equal.

Builds a queue_log of `--calls` calls (ENTERQUEUE, RINGNOANSWER, CONNECT,
COMPLETE*/ABANDON/EXITWITHTIMEOUT/EXITWITHKEY) over three queues and sixty
agents, from a pool of callers a quarter the number of calls (so repeat calls happen), then runs each implementation in its own process (so peak memory is
its own): read the log and compute, per queue, per agent and per 15-minute
interval, offered/answered/abandoned/short/timed out, ASA, talk and service
level, repeat calls and first-contact resolution. Prints seconds and peak RSS for each, whether their figures agree, and
peak memory on a quarter of the file: the import (log -> visits) should be
flat; the report also keeps the callers of the last 7 days (repeat calls).
Goal (issue 8): ours <= 10 s on 1,000,000 calls, faster than pandas, within 2x of DuckDB.

    python benchmarks/report_speed.py [--calls 1000000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SL, SHORT, INTERVAL = 20, 5, 900


def generate(path: Path, calls: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    queues = ["support", "sales", "billing"]
    agents = [f"agent{i:02d}" for i in range(60)]
    t = 1_795_300_000
    callers = max(1000, calls // 4)
    with open(path, "w") as out:
        for i in range(calls):
            t += rng.randint(0, 2)
            queue = rng.choice(queues)
            callid = f"{t}.{i}"
            out.write(f"{t}|{callid}|{queue}|NONE|ENTERQUEUE||55119{rng.randrange(callers):08d}|{rng.randint(1, 9)}\n")
            roll = rng.random()
            if roll < 0.80:
                wait = rng.randint(0, 60)
                if rng.random() < 0.1:
                    out.write(f"{t + wait // 2}|{callid}|{queue}|{rng.choice(agents)}|RINGNOANSWER|15000\n")
                agent = rng.choice(agents)
                talk = rng.randint(20, 600)
                out.write(f"{t + wait}|{callid}|{queue}|{agent}|CONNECT|{wait}|{callid}9|{rng.randint(0, 10)}\n")
                end = "COMPLETECALLER" if rng.random() < 0.5 else "COMPLETEAGENT"
                out.write(f"{t + wait + talk}|{callid}|{queue}|{agent}|{end}|{wait}|{talk}|1\n")
            elif roll < 0.92:
                wait = rng.randint(0, 120)
                out.write(f"{t + wait}|{callid}|{queue}|NONE|ABANDON|1|1|{wait}\n")
            elif roll < 0.97:
                out.write(f"{t + 300}|{callid}|{queue}|NONE|EXITWITHTIMEOUT|1|1|300\n")
            else:
                wait = rng.randint(1, 40)
                out.write(f"{t + wait}|{callid}|{queue}|NONE|EXITWITHKEY|0|1|1|{wait}\n")


def run_ours(path: Path) -> dict:
    from reports.engine import ReportEngine
    from reports.metrics import Options

    engine = ReportEngine()
    engine.load_queue_log(path)
    result = engine.report(Options(sl_seconds=SL, short_abandon_seconds=SHORT, interval_seconds=INTERVAL))
    return {
        "queues": {
            q: [
                r["offered"],
                r["answered"],
                r["abandoned"],
                r["short_abandoned"],
                r["timed_out"],
                r["asa_s"],
                r["avg_talk_s"],
                r["service_level_pct"],
                r["repeat_calls_24h"],
                r["fcr_24h_pct"],
            ]
            for q, r in result["queues"].items()
        },
        "agents": {a: [r["answered"], r["talk_s"]] for a, r in result["agents"].items() if r["answered"]},
        "intervals": len(result["intervals"]),
        "interval_offered": sum(i["offered"] for i in result["intervals"]),
    }


def run_pandas(path: Path) -> dict:
    import pandas as pd

    cols = ["epoch", "callid", "queue", "agent", "event", "d1", "d2", "d3", "d4"]
    df = pd.read_csv(path, sep="|", header=None, names=cols, dtype=str, keep_default_na=False)
    df["epoch"] = df["epoch"].astype("int64")
    enter = df[df.event == "ENTERQUEUE"][["callid", "queue", "epoch", "d2"]].rename(columns={"d2": "caller"})
    connect = df[df.event == "CONNECT"][["callid", "queue", "agent", "d1"]].rename(columns={"d1": "wait_c"})
    complete = df[df.event.isin(["COMPLETECALLER", "COMPLETEAGENT"])][["callid", "queue", "d2"]].rename(columns={"d2": "talk"})
    abandon = df[df.event == "ABANDON"][["callid", "queue", "d3"]].rename(columns={"d3": "wait_a"})
    timeout = df[df.event == "EXITWITHTIMEOUT"][["callid", "queue"]].assign(timed_out=1)
    v = enter.merge(connect, how="left", on=["callid", "queue"]).merge(complete, how="left", on=["callid", "queue"])
    v = v.merge(abandon, how="left", on=["callid", "queue"]).merge(timeout, how="left", on=["callid", "queue"])
    v["answered"] = v.talk.notna()
    v["wait_c"] = pd.to_numeric(v.wait_c)
    v["talk"] = pd.to_numeric(v.talk)
    v["wait_a"] = pd.to_numeric(v.wait_a)
    v["abandoned"] = v.wait_a >= SHORT
    v["short"] = v.wait_a < SHORT
    v["within"] = v.answered & (v.wait_c <= SL)
    v = v.sort_values(["caller", "epoch", "callid"], kind="stable")
    previous = v.groupby("caller")[["epoch", "callid", "queue", "answered"]].shift()
    v["r24"] = previous.callid.notna() & (previous.callid != v.callid) & (v.epoch - previous.epoch).between(0, 86400)
    credit = previous[v.r24 & previous.answered.fillna(False).astype(bool)].groupby("queue").size()
    queues = {}
    for q, g in v.groupby("queue"):
        counted = len(g) - int(g.short.sum())
        queues[q] = [
            len(g),
            int(g.answered.sum()),
            int(g.abandoned.sum()),
            int(g.short.sum()),
            int(g.timed_out.fillna(0).sum()),
            round(g.wait_c[g.answered].mean(), 2),
            round(g.talk[g.answered].mean(), 2),
            round(100 * g.within.sum() / counted, 2),
            int(g.r24.sum()),
            round(100 * (g.answered.sum() - credit.get(q, 0)) / g.answered.sum(), 2),
        ]
    a = v[v.answered].groupby("agent").agg(answered=("talk", "size"), talk=("talk", "sum"))
    agents = {name: [int(r.answered), round(float(r.talk), 2)] for name, r in a.iterrows()}
    slots = v.groupby([(v.epoch // INTERVAL) * INTERVAL, "queue"]).size()
    return {"queues": queues, "agents": agents, "intervals": len(slots), "interval_offered": int(slots.sum())}


def run_duckdb(path: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        create table log as select * from read_csv('{path}', delim='|', header=false, auto_detect=false, quote='', escape='', null_padding=true,
            columns={{'epoch':'VARCHAR','callid':'VARCHAR','queue':'VARCHAR','agent':'VARCHAR','event':'VARCHAR',
                      'd1':'VARCHAR','d2':'VARCHAR','d3':'VARCHAR','d4':'VARCHAR'}});
        create table v as
        select e.callid, e.queue, e.d2 as caller, cast(e.epoch as bigint) as epoch, c.agent, cast(c.d1 as double) as wait_c,
               cast(k.d2 as double) as talk, cast(a.d3 as double) as wait_a, t.callid is not null as timed_out
        from (select * from log where event = 'ENTERQUEUE') e
        left join (select * from log where event = 'CONNECT') c using (callid, queue)
        left join (select * from log where event in ('COMPLETECALLER', 'COMPLETEAGENT')) k using (callid, queue)
        left join (select * from log where event = 'ABANDON') a using (callid, queue)
        left join (select * from log where event = 'EXITWITHTIMEOUT') t using (callid, queue);
    """)
    con.execute("""
        create table r as select *, p_callid <> callid and epoch - p_epoch between 0 and 86400 as r24 from (
          select *, lag(epoch) over w as p_epoch, lag(callid) over w as p_callid, lag(queue) over w as p_queue,
                 lag(talk is not null) over w as p_answered
          from v window w as (partition by caller order by epoch, callid))""")
    queues = {}
    for row in con.execute(f"""
        select queue, count(*), count(talk), count(*) filter (where wait_a >= {SHORT}), count(*) filter (where wait_a < {SHORT}),
               count(*) filter (where timed_out), round(avg(wait_c) filter (where talk is not null), 2), round(avg(talk), 2),
               round(100.0 * count(*) filter (where talk is not null and wait_c <= {SL}) / (count(*) - count(*) filter (where wait_a < {SHORT})), 2),
               count(*) filter (where r24),
               round(100.0 * (count(talk) - coalesce(any_value(c.n), 0)) / count(talk), 2)
        from r left join (select p_queue as queue, count(*) as n from r where r24 and p_answered group by p_queue) c using (queue)
        group by queue""").fetchall():
        queues[row[0]] = list(row[1:])
    agents = {
        r[0]: [r[1], round(r[2], 2)]
        for r in con.execute("select agent, count(*), sum(talk) from v where talk is not null group by agent").fetchall()
    }
    slots = con.execute(f"select count(*), sum(n) from (select count(*) n from v group by epoch // {INTERVAL}, queue)").fetchone()
    return {"queues": queues, "agents": agents, "intervals": slots[0], "interval_offered": int(slots[1])}


def run_import(path: Path) -> dict:
    from reports.queue_log import read_lines, read_visits

    return {"visits": sum(1 for _ in read_visits(read_lines(path)))}


IMPLEMENTATIONS = {"ours": run_ours, "pandas": run_pandas, "duckdb": run_duckdb}


def child(name: str, path: Path) -> None:
    started = time.perf_counter()
    figures = (IMPLEMENTATIONS.get(name) or run_import)(path)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_mb": round(peak_mb, 1), "figures": figures}))


def measure(name: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--file", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _same(a: dict, b: dict) -> bool:
    def norm(figures: dict) -> dict:
        return {
            k: ({n: [round(float(x), 1) if x is not None else None for x in vals] for n, vals in v.items()} if isinstance(v, dict) else v)
            for k, v in figures.items()
        }

    return norm(a) == norm(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--child", choices=[*IMPLEMENTATIONS, "import"])
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    if importlib.util.find_spec("pandas") is None:
        sys.exit("pandas is missing: pip install -e '.[bench]' (or make bench)")
    with tempfile.TemporaryDirectory() as folder:
        full, quarter = Path(folder) / "queue_log", Path(folder) / "queue_log.quarter"
        generate(full, args.calls)
        generate(quarter, args.calls // 4)
        runs = {name: measure(name, full) for name in IMPLEMENTATIONS}
        small = measure("ours", quarter)
        imports = {"full": measure("import", full), "quarter": measure("import", quarter)}
        size_mb = full.stat().st_size / 2**20
    ours = runs["ours"]
    print(
        json.dumps(
            {
                "calls": args.calls,
                "file_mb": round(size_mb, 1),
                "seconds": {n: r["seconds"] for n, r in runs.items()},
                "peak_mb": {n: r["peak_mb"] for n, r in runs.items()},
                "ours_peak_mb_on_a_quarter_of_the_file": small["peak_mb"],
                "import_peak_mb": {"full": imports["full"]["peak_mb"], "quarter": imports["quarter"]["peak_mb"]},
                "import_seconds": imports["full"]["seconds"],
                "ours_vs_pandas": round(ours["seconds"] / runs["pandas"]["seconds"], 2),
                "ours_vs_duckdb": round(ours["seconds"] / runs["duckdb"]["seconds"], 2),
                "figures_equal": {n: _same(ours["figures"], r["figures"]) for n, r in runs.items() if n != "ours"},
                "goal": "ours <= 10 s, faster than pandas, within 2x of DuckDB, memory flat in file size",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
