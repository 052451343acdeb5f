"""The ``promolift`` command line: demo, validate, train, evaluate, plan, report.

Heavy modules are imported inside each command so that ``promolift --help`` is instant.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from enum import Enum
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
        with _epoch_progress(lambda text: bar.update(task, step=text)):
            yield lambda step: bar.update(task, advance=1, step=step)


@contextlib.contextmanager
def _epoch_progress(show) -> Iterator[None]:
    """Pass the deep model's per-epoch log records (INFO) to ``show`` while training."""
    import logging

    class _Show(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            show(record.getMessage())

    logger = logging.getLogger("promolift.models.deep")
    handler, level = _Show(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


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
        rule = f" ({policy['rule']})" if policy.get("rule") else ""
        out.print(f"{plan}: chose '{policy['candidate']}' by cross-validated profit{rule}")


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


class ServingFormat(str, Enum):
    """``--serving-format`` / ``--format`` choices (= ``promolift.models.deep.SERVING_FORMATS``)."""

    fp32 = "fp32"
    int8 = "int8"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


_SERVING_HELP = ("how the deep model runs when scoring: fp32 or int8 (PyTorch), onnx or onnx-int8 "
                 "(onnxruntime, needs the 'onnx' extra)")


@app.command(epilog="Example: promolift train campaign.toml --out models/spring --serving-format onnx")
def train(
    config: Existing,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to write")],
    data: Annotated[Path | None, typer.Option(help="log to train on (default: data.path in the config)")] = None,
    serving_format: Annotated[ServingFormat | None, typer.Option(help=_SERVING_HELP + "; default fp32")]
    = None,
) -> None:
    """Cross-validate every model kind, choose the policy by held-out profit, and write a model
    bundle (written atomically: an interrupted run leaves no half bundle)."""
    with _friendly_errors():
        from promolift.config import load_config
        from promolift.data import data_quality, load_campaign

        cfg = load_config(config)
        d = load_campaign(data, cfg)
        if serving_format and "deep" not in cfg.model.kinds:
            from promolift.errors import ConfigError

            raise ConfigError(f"--serving-format applies to the 'deep' model kind; add \"deep\" to "
                              f"kinds in the [model] section of {config.name} (or drop the option).")
        bundle = _train(cfg, d)
        if serving_format:
            from promolift.models.compress import compress_bundle

            bundle = compress_bundle(bundle, serving_format.value)
        bundle.metrics["quality"] = _quality_dict(data_quality(d))
        bundle.save(out_dir)
    chosen = bundle.metrics["chosen"]
    out.print(f"bundle {bundle.version} written to {out_dir}; policy: {chosen['candidate']}")


@app.command(epilog="Example: promolift compress models/spring --format onnx-int8")
def compress(
    model_dir: Existing,
    serving_format: Annotated[ServingFormat, typer.Option("--format", "-f", help=_SERVING_HELP)],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="write here (default: rewrite MODEL_DIR)")]
    = None,
) -> None:
    """Convert the bundle's deep model to a serving format (int8, ONNX) and rewrite the bundle
    atomically; the fp32 weights are kept, so converting back to fp32 is lossless."""
    with _friendly_errors():
        from promolift.models.compress import compress_bundle_dir

        written = compress_bundle_dir(model_dir, serving_format.value, out=out_dir)
    out.print(f"deep model now serves as {serving_format.value}; bundle written to {written}")


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
                    "--max-contacts 40000 --reasons 3 --out plan.csv")
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
    reasons: Annotated[int, typer.Option(min=0, max=20, help="add N reason codes per customer: the features "
                                         "that move the arm's expected profit most, in $ (0 = none)")] = 0,
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
        ids, X = load_customers(customers, id_column=bundle.config.data.id, features=bundle.encoder.columns_,
                                join=bundle.config.data.join)
        p = make_plan(bundle, X, ids, budget=budget, max_contacts=max_contacts, arm_caps=caps or None,
                      min_roi=min_roi, safety_margin=safety_margin, solver=solver, reasons=reasons)
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


def _parse_horizon(text: str, unit: str = "W") -> float:
    """'52w', '365d' or a bare number (in weeks) -> length in ``unit``."""
    from promolift.errors import DataError

    t = text.strip().lower()
    days = {"w": 7.0, "d": 1.0}
    factor = days.get(t[-1:]) if t[-1:].isalpha() else 7.0
    number = t[:-1] if t[-1:].isalpha() else t
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if factor is None or not value > 0:
        raise DataError(f"--horizon expects a length such as 52w or 365d, got {text!r}.")
    return value * factor / days[unit.lower()]


CLV_AUTO_DUCKDB_BYTES = 64 << 20
"""``--engine auto`` aggregates files of 64 MiB or more in DuckDB (out of core). Measured on a
10M-order log, DuckDB was 3-4x faster than pandas at half the peak memory; on small logs such
as CDNOW (2 MB) pandas is faster (no DuckDB start-up)."""


@app.command(epilog="Example: promolift clv orders.csv --customer-col customer_id --date-col date "
                    "--value-col amount --calibration-end 2024-06-30 --horizon 52w --margin 0.3 "
                    "--out clv.parquet\n\n"
                    "CDNOW master file (whitespace separated): promolift clv cdnow_master.txt "
                    "--value-col dollar_value --calibration-end 1997-09-30 --out clv.csv")
def clv(
    transactions: Existing,
    out_file: Annotated[Path, typer.Option("--out", "-o", help=".parquet or .csv; a .json summary goes beside it")]
    = Path("clv.parquet"),
    customer_col: Annotated[str, typer.Option(help="customer id column")] = "customer_id",
    date_col: Annotated[str, typer.Option(help="order date column")] = "date",
    value_col: Annotated[str | None, typer.Option(help="order value column (omit: no spend/CLV)")] = None,
    date_format: Annotated[str | None, typer.Option(help="strftime format of text dates, e.g. %d/%m/%Y")] = None,
    sep: Annotated[str | None, typer.Option(help="field separator (default: detected)")] = None,
    names: Annotated[str | None, typer.Option(help="comma-separated column names of a file without header")]
    = None,
    calibration_end: Annotated[str | None, typer.Option(help="fit on orders up to this day (default: last order)")]
    = None,
    observation_end: Annotated[str | None, typer.Option(help="holdout end (default: last order date)")] = None,
    horizon: Annotated[str, typer.Option(help="forecast horizon, e.g. 52w or 365d")] = "52w",
    margin: Annotated[float, typer.Option(help="profit share of revenue for CLV (1 = revenue)")] = 1.0,
    discount_rate: Annotated[float, typer.Option(help="annual discount rate")] = 0.1,
    engine: Annotated[str, typer.Option(help="auto, pandas or duckdb (out of core, for huge logs)")] = "auto",
    report: Annotated[Path | None, typer.Option(help="also write an HTML report (calibration/holdout "
                                                     "fit, purchases by frequency, CLV distribution)")] = None,
    compare: Annotated[bool, typer.Option(help="with --calibration-end: also fit the supervised LightGBM "
                                               "models and compare them with BG/NBD on the holdout")] = False,
) -> None:
    """Customer lifetime value and churn risk from an order log (BG/NBD + Gamma-Gamma).

    Writes one row per customer (P(alive), expected purchases over the horizon, expected spend
    per order, discounted CLV, churn-risk segment) and a JSON summary with the fitted
    parameters and their standard errors. With --calibration-end before the last order, the
    later orders are a holdout and the summary reports the forecast's accuracy on them.
    """
    import time
    import warnings

    with _friendly_errors():
        from promolift.clv.pipeline import fit_clv
        from promolift.clv.summary import rfm_summary
        from promolift.clv.transactions import load_transactions
        from promolift.errors import DataError, PromoliftWarning

        if engine not in ("auto", "pandas", "duckdb"):
            raise DataError(f"--engine must be auto, pandas or duckdb, got {engine!r}.")
        if out_file.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise DataError(f"--out {out_file}: the output must end in .parquet or .csv.")
        if compare and not calibration_end:
            raise DataError("--compare needs --calibration-end: the comparison is on the later orders.")
        steps = _parse_horizon(horizon)
        column_names = [c.strip() for c in names.split(",")] if names else None
        use_duckdb = not compare and (engine == "duckdb" or (
            engine == "auto" and transactions.stat().st_size >= CLV_AUTO_DUCKDB_BYTES))
        tx = None
        start = time.perf_counter()
        with _progress(3, "clv") as step, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PromoliftWarning)
            read = dict(customer_col=customer_col, date_col=date_col, value_col=value_col,
                        date_format=date_format, sep=sep, names=column_names)
            # With a calibration end, every later order (to the last one) is the holdout.
            periods = dict(calibration_end=calibration_end,
                           observation_end=observation_end or ("last" if calibration_end else None))
            if use_duckdb:
                from promolift.clv.sql import summarize_file

                summary = summarize_file(transactions, **read, **periods)
            else:
                tx = load_transactions(transactions, **read)
                summary = rfm_summary(tx, **periods)
            step("read and summarised")
            result = fit_clv(summary, horizon=steps, margin=margin, discount_rate=discount_rate)
            step("fitted")
            result.summary.update(source=str(transactions), engine="duckdb" if use_duckdb else "pandas",
                                  horizon_text=horizon, seconds=time.perf_counter() - start)
            table_path, json_path = result.save(out_file)
            step("written")
            comparison = None
            if compare:
                from promolift.clv.holdout import holdout_comparison

                comparison = holdout_comparison(tx, calibration_end=calibration_end,
                                                observation_end=observation_end or tx["date"].max()).table
            if report is not None:
                from promolift.clv.report import write_clv_report

                write_clv_report(result, report, transactions=tx, comparison=comparison)
        for w in caught:
            err.print(f"[yellow]warning:[/] {w.message}")
    _print_clv(result.summary)
    if comparison is not None:
        t = Table(title="holdout repeat purchases: BG/NBD against the supervised models")
        cols = {"model": ("model", str), "predicted_purchases": ("predicted", "{:,.0f}".format),
                "purchases_error_pct": ("error", "{:+.1f}%".format), "mae": ("MAE", "{:.3f}".format),
                "median_mae": ("MAE of median", "{:.3f}".format),
                "pearson_r": ("r", "{:.3f}".format), "auc_buy": ("AUC buys again", "{:.3f}".format)}
        for label, _ in cols.values():
            t.add_column(label, justify="left" if label == "model" else "right")
        for row in comparison[list(cols)].itertuples(index=False):
            t.add_row(*(fmt(v) for (_, fmt), v in zip(cols.values(), row, strict=True)))
        out.print(t)
    out.print(f"wrote {table_path} and {json_path}" + (f" and {report}" if report else ""))


def _print_clv(s: dict) -> None:
    t = Table(title=f"CLV: {s['customers']:,} customers ({s['repeat_customers']:,} with repeat purchases), "
                    f"calibration to {s['calibration_end']}")
    t.add_column("model")
    t.add_column("parameters (± s.e.)")
    t.add_column("log-lik.", justify="right")
    for key, label in (("bgnbd", "BG/NBD"), ("gamma_gamma", "Gamma-Gamma")):
        m = s.get(key)
        if m:
            params = ", ".join(f"{k} {v:.4g} ± {m['standard_errors'][k]:.2g}" for k, v in m["params"].items())
            t.add_row(label, params, f"{m['log_likelihood']:,.1f}")
    out.print(t)
    seg = ", ".join(f"{k}: {v:,}" for k, v in s["segments"].items())
    out.print(f"segments by P(alive): {seg}")
    totals = f"expected purchases over {s['horizon_text']}: {s['totals']['expected_purchases']:,.0f}"
    if "clv" in s["totals"]:
        totals += f"; total CLV {_money(s['totals']['clv'])} (margin {s['margin']:g}, discount {s['discount_rate']:g}/yr)"
    out.print(totals)
    if "holdout" in s:
        h = s["holdout"]
        out.print(f"holdout to {s['observation_end']}: actual {h['actual']:,.0f} repeat purchases, "
                  f"predicted {h['predicted']:,.0f} ({h['error_pct']:+.1f}%), per-customer MAE "
                  f"{h['mae']:.3f}, r {h['pearson_r']:.3f}")
        if (med := h.get("median")) is not None:
            out.print(f"  median forecast (for per-customer error, not totals): MAE {med['mae']:.3f}, "
                      f"total {med['predicted']:,.0f}")
    if s.get("new_customers_left_out"):
        out.print(f"{s['new_customers_left_out']:,} customers first seen after the calibration end were left out")


@app.command(epilog="Example: promolift serve models/spring --plan plans/spring/plan.json "
                    "--api-keys keys.json --port 8000")
def serve(
    model_dir: Existing,
    plan_file: Annotated[Path | None, typer.Option("--plan", exists=True,
                                                   help="plan.json (or its directory): use its prices")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    budget: Annotated[float | None, typer.Option(help="budget to pace (USD); default: the plan's")] = None,
    campaign: Annotated[str | None, typer.Option(help="budget counter name (default 'default')")] = None,
    budget_store: Annotated[str | None, typer.Option(
        help="sqlite:///budget.db (default ./promolift-budget.db) or redis://host:port/db")] = None,
    api_keys: Annotated[Path | None, typer.Option(exists=True, help="key file from 'promolift api-key'")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="serve without API keys (local tests only)")]
    = False,
    audit_log: Annotated[Path, typer.Option(help="append-only JSON-lines audit log")]
    = Path("promolift-audit.jsonl"),
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve real-time decisions over HTTP (FastAPI + uvicorn): the same model, economics and
    prices as the offline plan, with budget pacing, API keys, an audit log and /metrics.

    Set PROMOLIFT_SERVE_PSEUDONYM_KEY to a secret so that logged customer pseudonyms stay
    stable across restarts; other settings can be given as PROMOLIFT_SERVE_* variables.
    OpenAPI docs: http://HOST:PORT/docs."""
    import os

    if api_keys is None and not insecure:
        err.print("[bold red]error:[/] give --api-keys FILE (create one with 'promolift api-key NAME "
                  "--role decide --file keys.json'), or --insecure to serve without authentication.")
        raise typer.Exit(2)
    env = {"MODEL_DIR": model_dir, "PLAN": plan_file, "BUDGET": budget, "CAMPAIGN": campaign,
           "BUDGET_STORE": budget_store, "API_KEYS": api_keys, "AUDIT_LOG": audit_log.resolve()}
    for key, value in env.items():
        if value is not None:
            os.environ[f"PROMOLIFT_SERVE_{key}"] = str(value)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per request; see promolift.serve
    with _friendly_errors():
        import uvicorn

        from promolift.serve.app import app_from_env

        app_from_env()  # fail here, with a clear message, if the bundle or key file is broken
        uvicorn.run("promolift.serve.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, access_log=False, log_level="warning")


@app.command("api-key", epilog="Example: promolift api-key shop-frontend --role decide --file keys.json")
def api_key(
    name: Annotated[str, typer.Argument(help="who uses the key (logged with every request)")],
    role: Annotated[list[str], typer.Option(help="decide and/or admin (repeatable)")],
    key_file: Annotated[Path, typer.Option("--file", help="key file to add the key to")] = Path("keys.json"),
) -> None:
    """Create an API key for 'promolift serve': the file stores only its SHA-256, the key is
    printed once. Revoke a key by deleting its entry from the file and restarting the service."""
    with _friendly_errors():
        from promolift.serve.auth import add_key

        key = add_key(key_file, name, role)
    err.print(f"added '{name}' ({', '.join(role)}) to {key_file}; the key (shown only now):")
    print(key)


def main() -> None:
    """Entry point of the ``promolift`` script."""
    app()
