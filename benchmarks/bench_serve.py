"""Latency and throughput of ``promolift serve`` on Hillstrom bundles, over loopback HTTP.

For each served model, this starts ``promolift serve`` (uvicorn, 1 worker; uvloop and httptools
when installed, which uvicorn picks automatically) in its own process, and a separate
load-generator process (asyncio, a minimal keep-alive HTTP/1.1 client on 64 connections) that

1. sends single-customer decisions open-loop at a fixed rate (default 200 req/s for 20 s): each
   request is due at ``start + i / rate`` and its latency is counted from that due time, so a
   slow server cannot hide queueing (no coordinated omission); reports p50 / p99;
2. sends batches of 100 customers back to back on 4 connections for 10 s; reports customers/s.

Served models: a Hillstrom bundle from ``promolift train`` (LightGBM kinds) with a plan, with and
without reason codes, and the deep network alone in each of ``--deep-formats`` (fp32 and the
int8-compressed one by default). Each phase is repeated (default 3×); the tables give the median and the min–max spread. Budget
pacing is on (SQLite store, a budget that never binds) and so is the audit log (fsync interval),
as in production. Results go to ``benchmarks/results/serve.json`` and ``serve.md``.

Usage::

    python benchmarks/bench_serve.py                      # trains a Hillstrom bundle if needed
    python benchmarks/bench_serve.py --model M --plan P/plan.json --customers C.csv --deep-formats
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GRACE_S = 5.0  # after the last due time, wait this long for answers, then give up on the rest
PROMOLIFT = [str(Path(sys.executable).with_name("promolift"))]


# ------------------------------------------------------------------------------- load generator
class _Conn:
    """A minimal keep-alive HTTP/1.1 client connection (httpx's pool is too slow for thousands
    of concurrent requests in one process; this adds almost nothing to the measured latency)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:"))
        await self.reader.readexactly(length)
        return status


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _single(url: str, bodies: list[bytes], rate: float, duration: float, conns: int = 64) -> dict:
    n = int(rate * duration)
    lat = np.full(n, np.nan)
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    pool = [_Conn(*_hostport(url)) for _ in range(conns)]
    for b in bodies[:20]:  # warm-up
        await pool[0].post("/v1/decisions", b)

    async def worker(conn: _Conn) -> None:
        nonlocal errors
        while True:
            i, due = await queue.get()
            try:
                ok = await conn.post("/v1/decisions", bodies[i % len(bodies)]) == 200
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok, conn.writer = False, None
            if ok:
                lat[i] = time.perf_counter() - due
            else:
                errors += 1

    workers = [asyncio.create_task(worker(c)) for c in pool]
    start = time.perf_counter() + 0.05
    for i in range(n):  # open loop: request i is due at start + i / rate, whatever the server does
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        queue.put_nowait((i, due))
    deadline = start + duration + GRACE_S
    while np.isnan(lat).sum() > errors and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    unfinished = int(np.isnan(lat).sum()) - errors
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    elapsed = time.perf_counter() - start
    done = np.isfinite(lat)
    ms = np.where(done, lat * 1000, np.inf)  # failed or unfinished: +inf, so percentiles stay honest
    completed = int(done.sum())
    return {"requests": n, "completed": completed, "errors": errors, "unfinished": unfinished,
            "achieved_rate": completed / elapsed,
            **{f"p{q}_ms": float(np.percentile(ms, q, method="higher")) for q in (50, 90, 99)},
            "max_ms": float(ms.max())}


async def _batches(url: str, bodies: list[bytes], size: int, duration: float, conns: int) -> dict:
    done, errors = 0, 0
    pool = [_Conn(*_hostport(url)) for _ in range(conns)]
    await pool[0].post("/v1/decisions", bodies[0])
    start = time.perf_counter()

    async def worker(w: int) -> None:
        nonlocal done, errors
        i = w
        while time.perf_counter() - start < duration:
            if await pool[w].post("/v1/decisions", bodies[i % len(bodies)]) == 200:
                done += size
            else:
                errors += 1
            i += conns

    await asyncio.gather(*(worker(w) for w in range(conns)))
    elapsed = time.perf_counter() - start
    return {"customers_per_s": done / elapsed, "requests": done // size, "errors": errors}


def _bodies(customers: Path, size: int, reasons: int | None, n: int = 400) -> list[bytes]:
    import pandas as pd

    frame = pd.read_csv(customers)
    ids = frame.pop("customer_id").astype(str).tolist()
    records = frame.to_dict(orient="records")
    out = []
    for s in range(0, min(len(records), n * size), size):
        body = {"customers": [{"id": i, "features": r} for i, r in zip(ids[s:s + size], records[s:s + size],
                                                                      strict=True)]}
        if reasons is not None:
            body["reasons"] = reasons
        out.append(json.dumps(body).encode())
    return out


def loadgen(args: argparse.Namespace) -> None:
    """Entry point of the load-generator process: prints one JSON result."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if args.mode == "single":
        bodies = _bodies(args.customers, 1, args.reasons)
        res = asyncio.run(_single(args.url, bodies, args.rate, args.duration))
    else:
        bodies = _bodies(args.customers, args.batch, args.reasons, n=20)
        res = asyncio.run(_batches(args.url, bodies, args.batch, args.duration, args.conns))
    print(json.dumps(res))


# ------------------------------------------------------------------------------- orchestration
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model: Path, plan: Path | None, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [*PROMOLIFT, "serve", str(model), "--port", str(port), "--insecure",
           "--budget", "1000000", "--budget-store", f"sqlite:///{tmp / 'budget.db'}",
           "--audit-log", str(tmp / "audit.jsonl")]
    if plan:
        cmd += ["--plan", str(plan)]
    env = os.environ | {"PROMOLIFT_SERVE_PSEUDONYM_KEY": "bench", "PROMOLIFT_SERVE_LOG_LEVEL": "warning"}
    with open(tmp / "server.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not become ready in 120 s")


def _run_loadgen(url: str, customers: Path, **kw) -> dict:
    cmd = [sys.executable, __file__, "loadgen", "--url", url, "--customers", str(customers)]
    for k, v in kw.items():
        if v is not None:
            cmd += [f"--{k}", str(v)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _train_default(work: Path) -> tuple[Path, Path, Path]:
    """A Hillstrom bundle (``promolift train``) and a plan with a binding budget."""
    from promolift.datasets import load_hillstrom

    frame = load_hillstrom()
    frame.to_csv(work / "hillstrom.csv", index=False)
    customers = work / "customers.csv"
    frame.drop(columns=["segment", "visit", "conversion", "spend"]).iloc[:2000].to_csv(customers, index=False)
    toml = (Path(__file__).resolve().parents[1] / "src/promolift/datasets/hillstrom.toml").read_text()
    (work / "hillstrom.toml").write_text(toml.replace("[data]\n", '[data]\npath = "hillstrom.csv"\n', 1))
    subprocess.run([*PROMOLIFT, "train", str(work / "hillstrom.toml"), "--out", str(work / "model")], check=True)
    subprocess.run([*PROMOLIFT, "plan", str(work / "model"), str(customers), "--budget", "60",
                    "--out", str(work / "plan" / "plan.csv")], check=True)
    return work / "model", work / "plan" / "plan.json", customers


def _train_deep(work: Path, formats: list[str]) -> dict[str, Path]:
    """Hillstrom bundles whose every decision runs the deep network, one per serving format.

    ``train`` with the kinds constant + deep (2 folds), then the policy weights set to the deep
    model alone (cross-validation may prefer "constant", which would never run the network).
    """
    from dataclasses import replace

    from promolift.config import CampaignConfig
    from promolift.data import load_campaign
    from promolift.datasets import hillstrom_config, load_hillstrom
    from promolift.models.compress import compress_bundle
    from promolift.train import train

    raw = hillstrom_config().to_toml_dict()
    cfg = CampaignConfig.from_dict(raw | {"model": raw.get("model", {}) | {"kinds": ["constant", "deep"],
                                                                          "n_folds": 2}})
    bundle = replace(train(cfg, load_campaign(load_hillstrom(), cfg)), weights={"deep": 1.0})
    out = {}
    for fmt in formats:
        out[fmt] = work / f"deep-{fmt}"
        compress_bundle(bundle, fmt).save(out[fmt])
    return out


def _summary(values: list[float]) -> dict:
    """Median and spread; ``None`` stands for infinite (requests left unanswered)."""
    def fin(v: float) -> float | None:
        return None if not np.isfinite(v) else round(float(v), 3)

    return {"median": fin(np.median(values)), "min": fin(np.min(values)), "max": fin(np.max(values)),
            "runs": [fin(v) for v in values]}


def bench(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    if args.model is None:
        args.model, args.plan, args.customers = _train_default(work)
    setups = [("lgbm", args.model, args.plan, None), ("lgbm, no reason codes", args.model, args.plan, 0)]
    for fmt, path in (_train_deep(work, args.deep_formats) if args.deep_formats else {}).items():
        setups.append((f"deep {fmt}, no reason codes", path, None, 0))
    load_before = os.getloadavg()[0]
    results = {"machine": f"{os.cpu_count()} cores, load average {load_before:.1f} at the start",
               "rates": args.rate, "duration_s": args.duration, "batch": args.batch,
               "repeats": args.repeats, "setups": {}}
    for name, model, plan, reasons in setups:
        tmp = Path(tempfile.mkdtemp(dir=work))
        proc, url = _serve(Path(model), Path(plan) if plan else None, tmp)
        try:
            version = json.loads(_http_get(f"{url}/readyz"))["model_version"]
            batch = []
            single: dict[float, list[dict]] = {rate: [] for rate in args.rate}
            for r in range(args.repeats):
                for rate in args.rate:
                    single[rate].append(_run_loadgen(url, args.customers, mode="single", rate=rate,
                                                     duration=args.duration, reasons=reasons))
                    print(f"{name} @ {rate:g}/s run {r + 1}: p50 {single[rate][-1]['p50_ms']:.1f} ms, "
                          f"p99 {single[rate][-1]['p99_ms']:.1f} ms", file=sys.stderr)
                batch.append(_run_loadgen(url, args.customers, mode="batch", batch=args.batch,
                                          duration=args.batch_duration, conns=4, reasons=reasons))
                print(f"{name} run {r + 1}: {batch[-1]['customers_per_s']:,.0f} customers/s", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(30)
        for rate, runs in single.items():
            results["setups"][f"{name} @ {rate:g} req/s"] = {
                "model": str(model), "plan": str(plan) if plan else None, "model_version": version,
                "reasons": "server default (3)" if reasons is None else reasons, "rate": rate,
                "single_p50_ms": _summary([s["p50_ms"] for s in runs]),
                "single_p99_ms": _summary([s["p99_ms"] for s in runs]),
                "single_errors": sum(s["errors"] for s in runs),
                "single_unfinished": sum(s["unfinished"] for s in runs),
                "single_achieved_rate": _summary([s["achieved_rate"] for s in runs]),
                "batch_customers_per_s": _summary([b["customers_per_s"] for b in batch]),
                "batch_errors": sum(b["errors"] for b in batch),
            }
    results["machine"] += f", {os.getloadavg()[0]:.1f} at the end"
    return results


def _http_get(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=5).text


def markdown(res: dict) -> str:
    lines = [f"# promolift serve, {res['repeats']} runs, {res['machine']}", "",
             (f"Single decisions open-loop at the given rate for {res['duration_s']:g} s (latency from "
             f"the due time; requests unanswered {GRACE_S:g} s after the last due time count as infinitely "
             f"slow, shown as inf); batches of {res['batch']} back to back on 4 connections."), "",
             ("| model | reason codes | p50 ms (min–max) | p99 ms (min–max) | served req/s | errors + unfinished "
             "| batch customers/s (min–max) |"),
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in res["setups"].items():
        def f(d, fmt="{:.1f}"):
            d = {k: (np.inf if v is None else v) for k, v in d.items() if k != "runs"}
            return f"{fmt.format(d['median'])} ({fmt.format(d['min'])}–{fmt.format(d['max'])})"

        lines.append(f"| {name} | {s['reasons']} | {f(s['single_p50_ms'])} | {f(s['single_p99_ms'])} | "
                     f"{s['single_achieved_rate']['median']:.0f} | "
                     f"{s['single_errors'] + s['single_unfinished'] + s['batch_errors']} | "
                     f"{f(s['batch_customers_per_s'], '{:,.0f}')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    lg = sub.add_parser("loadgen")
    lg.add_argument("--url", required=True)
    lg.add_argument("--customers", type=Path, required=True)
    lg.add_argument("--mode", choices=["single", "batch"], required=True)
    lg.add_argument("--rate", type=float, default=200)
    lg.add_argument("--duration", type=float, default=20)
    lg.add_argument("--batch", type=int, default=100)
    lg.add_argument("--conns", type=int, default=4)
    lg.add_argument("--reasons", type=int, default=None)
    p.add_argument("--model", type=Path)
    p.add_argument("--plan", type=Path)
    p.add_argument("--customers", type=Path)
    p.add_argument("--deep-formats", nargs="*", default=["fp32", "int8"],
                   help="serving formats of the deep model to measure (trains it; none: skip)")
    p.add_argument("--rate", type=float, nargs="+", default=[200.0], help="one or more request rates")
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--batch-duration", type=float, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.cmd == "loadgen":
        return loadgen(args)
    if args.model is not None and args.customers is None:
        p.error("--customers CSV (id + feature columns) is needed with --model")
    res = bench(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (RESULTS / "serve.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
