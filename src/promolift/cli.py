"""The ``promolift`` command line: demo, validate, train, evaluate, plan, report.

Heavy modules are imported inside each command so that ``promolift --help`` is instant.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="promolift",
    help="Which customer should get which promotion, and what will it do to profit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

Existing = Annotated[Path, typer.Argument(exists=True, readable=True, resolve_path=True)]


def _version(value: bool) -> None:
    if value:
        from promolift._version import __version__

        out.print(f"promolift {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Which customer should get which promotion, and what will it do to profit."""


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Show promolift errors as one red message and exit 2, not as a traceback."""
    from rich.markup import escape

    from promolift.errors import PromoliftError

    try:
        yield
    except PromoliftError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[step]}"), TimeElapsedColumn(), console=err,
                  transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task(label, total=total, step="")
        yield lambda step: bar.update(task, advance=1, step=step)


def _money(x: float) -> str:
    return f"{'-' if x < 0 else ''}${abs(x):,.0f}"


def _print_plan(plan) -> None:
    s = plan.summary
    t = Table(title=f"Plan for {s['customers']:,} customers ({s['policy']['candidate']})")
    for col in ("", "model expects", "cross-validated (95% CI)"):
        t.add_column(col, justify="right" if col else "left")
    v = s["validated"]
    rows = [("incremental profit", "expected_incremental_profit", "incremental_profit", _money),
            ("promotion cost", "expected_cost", "cost", _money),
            ("incremental revenue", "expected_incremental_revenue", "incremental_revenue", _money),
            ("incremental conversions", "expected_incremental_conversions", "incremental_conversions",
             lambda x: f"{x:,.1f}")]
    for label, ekey, vkey, fmt in rows:
        if vkey not in v:
            continue
        iv = v[vkey]
        t.add_row(label, fmt(s["expected"][ekey]),
                  f"{fmt(iv['estimate'])} ({fmt(iv['ci_low'])} to {fmt(iv['ci_high'])})")
    t.add_row("contacts", f"{s['expected']['contacts']:,}", "")
    out.print(t)
    mix = ", ".join(f"{a}: {c:,}" for a, c in s["arms"].items())
    out.print(f"allocation: {mix}; shadow price λ = {s['shadow_price']:.4f}")


def _print_policies(evaluation: dict) -> None:
    t = Table(title=f"Held-out incremental profit per 1,000 customers vs nobody (n = {evaluation['n_rows']:,})")
    for col in ("policy", "contacted", "IPW [95% CI]", "DR [95% CI]"):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for r in evaluation["policies"]:
        t.add_row(r["policy"], f"{r['contact_share']:.0%}",
                  f"{r['ipw']:+.0f} [{r['ipw_low']:+.0f}, {r['ipw_high']:+.0f}]",
                  f"{r['dr']:+.0f} [{r['dr_low']:+.0f}, {r['dr_high']:+.0f}]")
    out.print(t)
    for plan, policy in evaluation.get("chosen", {}).items():
        out.print(f"{plan}: chose '{policy['candidate']}' by cross-validated profit")


def _print_uplift(evaluation: dict, outcomes: tuple[str, ...] = ("conversion", "spend")) -> None:
    t = Table(title="Per-arm uplift on held-out data (difference in means, 95% CI)")
    for col in ("arm", "outcome", "uplift", "95% CI"):
        t.add_column(col, justify="left" if col in ("arm", "outcome") else "right")
    for r in evaluation["arm_uplift"]:
        t.add_row(r["arm"], r["outcome"], f"{r['uplift']:+.4f}", f"{r['ci_low']:+.4f} to {r['ci_high']:+.4f}")
    out.print(t)
    records = [r for r in evaluation["uplift"] if r["outcome"] in outcomes]
    cells = sorted({(r["arm"], r["outcome"]) for r in records})
    q = Table(title="Qini AUC on held-out data, by model")
    q.add_column("model")
    for arm, outcome in cells:
        q.add_column(f"{arm}\n{outcome}", justify="right")
    for model in dict.fromkeys(r["model"] for r in records):
        by = {(r["arm"], r["outcome"]): r["qini_auc"] for r in records if r["model"] == model}
        q.add_row(model, *(f"{by[c]:.4f}" for c in cells))
    out.print(q)


def _train(config, data):
    from promolift.train import fitted_kinds, train

    n_fits = len(fitted_kinds(config)) * (config.model.n_folds + 1)
    with _progress(n_fits, "training") as step:
        return train(config, data, on_step=step)


@app.command(epilog="Example: promolift validate train.csv --config campaign.toml")
def validate(
    data: Existing,
    config: Annotated[Path, typer.Option("--config", "-c", exists=True, help="campaign.toml")],
) -> None:
    """Check a campaign log against its config and summarise its quality (missing values,
    outliers, arm balance with a sample-ratio test)."""
    with _friendly_errors():
        from promolift.config import load_config
        from promolift.data import data_quality, load_campaign

        cfg = load_config(config)
        d = load_campaign(data, cfg)
        q = data_quality(d)
    t = Table(title=f"{data.name}: {len(d):,} rows, arms")
    for col in q.arms.columns:
        t.add_column(str(col), justify="left" if col == "arm" else "right")
    for row in q.arms.itertuples(index=False):
        t.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    out.print(t)
    f = Table(title="features")
    for col in q.features.columns:
        f.add_column(str(col))
    for row in q.features.itertuples(index=False):
        f.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    out.print(f)
    out.print(f"sample-ratio test p = {q.srm_pvalue:.3g} ({'ok' if q.srm_ok else 'MISMATCH'})")
    for w in q.warnings():
        err.print(f"[yellow]warning:[/] {w}")
    out.print("[green]valid[/]")


@app.command(epilog="Example: promolift train campaign.toml --out models/spring")
def train(
    config: Existing,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to write")],
    data: Annotated[Path | None, typer.Option(help="log to train on (default: data.path in the config)")] = None,
) -> None:
    """Cross-validate every model kind, choose the policy by held-out profit, and write a model
    bundle (written atomically: an interrupted run leaves no half bundle)."""
    with _friendly_errors():
        from promolift.config import load_config
        from promolift.data import data_quality, load_campaign

        cfg = load_config(config)
        d = load_campaign(data, cfg)
        bundle = _train(cfg, d)
        bundle.metrics["quality"] = _quality_dict(data_quality(d))
        bundle.save(out_dir)
    chosen = bundle.metrics["chosen"]
    out.print(f"bundle {bundle.version} written to {out_dir}; policy: {chosen['candidate']}")


def _quality_dict(q) -> dict:
    return {"features": json.loads(q.features.to_json(orient="records")),
            "arms": json.loads(q.arms.to_json(orient="records")), "srm_pvalue": q.srm_pvalue}


@app.command(epilog="Example: promolift evaluate models/spring holdout.csv --out evaluation.json")
def evaluate(
    model_dir: Existing,
    data: Existing,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="write the results as JSON")] = None,
    max_contacts_share: Annotated[float, typer.Option(help="also evaluate a plan capped at this share")] = 0.3,
) -> None:
    """Value the bundle's plans and the simple policies (nobody, one arm for all, random) on a
    held-out randomized log, with IPW and doubly-robust estimates and 95% intervals."""
    with _friendly_errors():
        from promolift.bundle import ModelBundle
        from promolift.data import load_campaign
        from promolift.holdout import evaluate_bundle
        from promolift.io import atomic_write_json

        bundle = ModelBundle.load(model_dir)
        result = evaluate_bundle(bundle, load_campaign(data, bundle.config),
                                 max_contacts_share=max_contacts_share)
        if out_file:
            atomic_write_json(out_file, result)
    _print_uplift(result)
    _print_policies(result)


@app.command(epilog="Example: promolift plan models/spring customers.parquet --budget 5000 "
                    "--max-contacts 40000 --out plan.csv")
def plan(
    model_dir: Existing,
    customers: Existing,
    budget: Annotated[float | None, typer.Option(help="limit on total expected promotion cost (USD)")] = None,
    max_contacts: Annotated[int | None, typer.Option(help="limit on customers contacted")] = None,
    arm_cap: Annotated[list[str] | None, typer.Option(help="per-arm limit, ARM=N (repeatable)")] = None,
    min_roi: Annotated[float | None, typer.Option(help="offer an arm only if value ≥ this × cost")] = None,
    safety_margin: Annotated[float, typer.Option(help="plan against budget × (1 − margin)")] = 0.0,
    solver: Annotated[str, typer.Option(help="lagrangian (any size) or exact (HiGHS MIP)")] = "lagrangian",
    out_file: Annotated[Path, typer.Option("--out", "-o", help=".csv or .parquet; plan.json goes beside it")]
    = Path("plan.csv"),
) -> None:
    """Choose an arm (or nothing) for every customer to maximise expected incremental profit
    within the budget; write one row per customer and a summary with intervals."""
    with _friendly_errors():
        from promolift.bundle import ModelBundle
        from promolift.data import load_customers
        from promolift.errors import DataError
        from promolift.plan import Plan, make_plan

        caps = {}
        for item in arm_cap or []:
            name, sep, value = item.rpartition("=")
            if not sep or not value.strip().isdigit():
                raise DataError(f"--arm-cap expects ARM=N, got {item!r}")
            caps[name] = int(value)
        bundle = ModelBundle.load(model_dir)
        ids, X = load_customers(customers, id_column=bundle.config.data.id, features=bundle.encoder.columns_)
        p = make_plan(bundle, X, ids, budget=budget, max_contacts=max_contacts, arm_caps=caps or None,
                      min_roi=min_roi, safety_margin=safety_margin, solver=solver)
        p.save(out_file)
    _print_plan(p)
    out.print(f"wrote {out_file} and {Plan.summary_path(out_file)}")


@app.command(epilog="Example: promolift report models/spring --evaluation evaluation.json --out report.html")
def report(
    model_dir: Existing,
    out_file: Annotated[Path, typer.Option("--out", "-o")] = Path("report.html"),
    evaluation: Annotated[Path | None, typer.Option(exists=True, help="JSON from 'promolift evaluate --out'")] = None,
    plan_json: Annotated[Path | None, typer.Option("--plan", exists=True, help="plan.json from 'promolift plan'")] = None,
) -> None:
    """Write a self-contained HTML report (works offline): Qini curves, uplift by decile,
    profit vs budget, allocation mix, data quality, and how sure the choice of policy is."""
    with _friendly_errors():
        from promolift.bundle import ModelBundle
        from promolift.plan import Plan
        from promolift.report import write_report

        bundle = ModelBundle.load(model_dir)
        ev = json.loads(evaluation.read_text()) if evaluation else None
        pl = Plan(table=None, summary=json.loads(plan_json.read_text())) if plan_json else None
        write_report(out_file, bundle=bundle, evaluation=ev, plan=pl)
    out.print(f"wrote {out_file}")


@app.command(epilog="Example: promolift demo --out demo-output")
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="where to write bundle, plan and report")]
    = Path("promolift-demo"),
    budget: Annotated[float, typer.Option(help="e-mail budget for the held-out customers (USD)")] = 600.0,
    seed: Annotated[int, typer.Option(help="seed of the 70/30 split")] = 0,
) -> None:
    """Run the whole flow on the embedded Hillstrom e-mail experiment: validate, train, evaluate
    on a held-out 30%, plan under a budget, and write the bundle, plan.csv and report.html."""
    import time

    import numpy as np

    with _friendly_errors():
        from sklearn.model_selection import train_test_split

        from promolift.data import data_quality, load_campaign
        from promolift.datasets import hillstrom_config, load_hillstrom
        from promolift.holdout import evaluate_bundle
        from promolift.io import atomic_write_json
        from promolift.plan import make_plan
        from promolift.report import write_report
        from promolift.train import stratification_label

        start = time.perf_counter()
        cfg = hillstrom_config()
        data = load_campaign(load_hillstrom(), cfg)
        quality = data_quality(data)
        tr, te = train_test_split(np.arange(len(data)), test_size=0.3, random_state=seed,
                                  stratify=stratification_label(data, cfg))
        train_data, test_data = data.subset(tr), data.subset(te)
        out.print(f"Hillstrom e-mail experiment: {len(data):,} customers, arms {', '.join(data.arms)}; "
                  f"training on {len(tr):,}, holding out {len(te):,}")
        bundle = _train(cfg, train_data)
        bundle.metrics["quality"] = _quality_dict(quality)
        bundle.save(out_dir / "model")
        evaluation = evaluate_bundle(bundle, test_data)
        atomic_write_json(out_dir / "evaluation.json", evaluation)
        p = make_plan(bundle, test_data.X, test_data.ids, budget=budget)
        p.save(out_dir / "plan.csv")
        write_report(out_dir / "report.html", bundle=bundle, evaluation=evaluation, plan=p, quality=quality)
        elapsed = time.perf_counter() - start
    _print_uplift(evaluation)
    _print_policies(evaluation)
    _print_plan(p)
    out.print(f"wrote {out_dir}/model, plan.csv, plan.json, evaluation.json, report.html "
              f"in {elapsed:.0f} s")


def main() -> None:
    """Entry point of the ``promolift`` script."""
    app()
