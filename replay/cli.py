"""The replay commands: import a real declaration log, and evaluate policies on it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import List, Optional

import typer

from engine.commands import console, fail, need, selection_policy
from engine.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True)
NEEDS = ("pandas", "pyarrow", "scipy")  # the [sim] extra


@app.command("import")
def import_cmd(
    logs: List[Path] = typer.Argument(..., metavar="LOG...", help="CSV or Parquet files of one log"),
    mapping: Path = typer.Option(..., "--mapping", help="YAML: columns to fields (scenarios/mappings/)"),
    out: Path = typer.Option(..., "--out", help="folder for declarations.parquet and the import report"),
) -> None:
    """Import a declaration log: map, check and keep its outcomes; bad rows are reported and skipped."""
    need("sim", *NEEDS)
    from replay.log import REFUSED, REPORT, import_log
    from replay.mapping import Mapping

    try:
        report = import_log(logs, Mapping.load(mapping), out)
    except InputError as e:
        fail(str(e))
    console(stderr=True).print(
        f"read {report.rows_read:,} rows, kept {report.rows_kept:,}, refused {report.rows_refused:,} "
        f"in {report.seconds:.1f} s; report in {out / REPORT}"
        + (f", refused rows in {out / REFUSED}" if report.rows_refused else ""),
        highlight=False,
    )
    for reason, count in sorted(report.reasons.items(), key=lambda kv: -kv[1])[:10]:
        console(stderr=True).print(f"  {count:,} x {reason}", markup=False, highlight=False)


@app.command()
def evaluate(
    folder: Path = typer.Argument(..., metavar="DIR", help="an imported log"),
    rules: List[Path] = typer.Option(..., "--rules", help="rules file; repeat to compare policies"),
    ratio: Optional[float] = typer.Option(None, "--ratio", min=0, max=1, help="pure random ratio"),
    expected_rate: Optional[float] = typer.Option(None, "--expected-rate", min=0, max=1),
    policy_file: Optional[Path] = typer.Option(None, "--policy", help="YAML selection policy"),
    budget: Optional[float] = typer.Option(
        None, "--budget", min=0, max=1, help="also the top scores within this share of declarations"
    ),
    start: Optional[str] = typer.Option(
        None, "--from", help="evaluate declarations from this date (earlier ones only build the standing)"
    ),
    seed: int = typer.Option(1, "--seed"),
    explain: bool = typer.Option(False, "--explain", help="list each rule's hits and hit rate"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for evaluation.csv and the plot"),
) -> None:
    """Replay the log through each rules file under the policy: per channel, precision, recall, lift
    and revenue recall with 95% intervals, and the same at a fixed budget."""
    need("sim", *NEEDS)
    from engine.rules import RuleSet
    from replay import log as logs
    from replay.evaluate import evaluate as run

    try:
        frame = logs.read(folder)
        policy = selection_policy(policy_file, ratio, expected_rate)
        since = dt.date.fromisoformat(start) if start else None
        results = [
            run(frame, RuleSet.load(r), policy, budget=budget, start=since, seed=seed, name=r.stem)
            for r in rules
        ]
    except InputError as e:
        fail(str(e))
    except ValueError:
        fail(f"--from {start!r}: expected a date such as 2021-04-01")
    import pandas as pd

    table = pd.concat([r.table() for r in results], ignore_index=True)
    first = results[0]
    print(
        f"{first.rows:,} declarations from {start or 'the start'}; the log's violation rate "
        f"{first.base_rate:.1%}"
        + (" (inverse-probability weighted)" if first.weighted else "")
        + (
            "; every row was inspected, so precision is among declarations someone chose to inspect, "
            "and recall is of the violations those inspections found"
            if first.only_inspected
            else ""
        )
    )
    columns = [
        "policy",
        "channel",
        "selected",
        "found",
        "selection_rate",
        "precision",
        "precision_low",
        "precision_high",
        "recall",
        "recall_low",
        "recall_high",
        "lift",
        "revenue_recall",
    ]
    print(table[columns].round(3).to_string(index=False))
    if explain:
        for r in results:
            rows = sorted(r.rules.items(), key=lambda kv: -kv[1]["found"])
            print(f"\n{r.policy}: rules by violations found")
            for rule, f in rows:
                print(
                    f"  {rule:32s} fired {f['fired']:6d}  found {f['found']:6d}  hit rate "
                    + (f"{f['hit_rate']:.1%} [{f['low']:.1%}, {f['high']:.1%}]" if f["fired"] else "-")
                )
    if out is not None:
        from replay.plots import precision_recall

        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "evaluation.csv", index=False, float_format="%.6g")
        (out / "rules.json").write_text(
            json.dumps({r.policy: r.rules for r in results}, indent=1, default=str)
        )
        precision_recall(table, first.base_rate, out / "precision_recall.png")
        console(stderr=True).print(
            f"wrote {out / 'evaluation.csv'}, {out / 'rules.json'} and {out / 'precision_recall.png'}",
            highlight=False,
        )


rules_app = typer.Typer(no_args_is_help=True, help="Monitor and draft risk rules.")
app.add_typer(rules_app, name="rules")


@rules_app.command("report")
def rules_report(
    source: Path = typer.Argument(..., metavar="DIR|DB", help="an imported log, or a live office's database"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="the rules to replay the log through"),
    ratio: Optional[float] = typer.Option(None, "--ratio", min=0, max=1, help="pure random ratio"),
    policy_file: Optional[Path] = typer.Option(None, "--policy", help="YAML selection policy"),
    seed: int = typer.Option(1, "--seed"),
    output: str = typer.Option("table", "--format", help="table, or json (per rule and month)"),
) -> None:
    """Per rule: fired, selected, found, hit rate with its 95% interval, share of all detections, and
    flags for rules that never fire, never find, or find less than the random channel."""
    from engine import report

    if output not in ("table", "json"):
        fail(f"--format: table or json, not {output!r}")
    try:
        if source.is_dir():
            need("sim", *NEEDS)
            from engine.integrity import FeedbackPolicy
            from engine.rules import RuleSet
            from replay import log as logs
            from replay.evaluate import decide, report_rows

            if rules is None:
                fail("replaying a log needs --rules")
            ruleset, frame = RuleSet.load(rules), logs.read(source)
            decided = decide(
                frame, ruleset, selection_policy(policy_file, ratio, None), seed, FeedbackPolicy()
            )
            months = report.monthly(report_rows(frame, decided, ruleset), [r.id for r in ruleset.rules])
        else:
            from engine.commands import open_office

            months = report.monthly(open_office(source).store.report_rows())
    except InputError as e:
        fail(str(e))
    summary = report.rule_summary(months)
    if output == "json":
        print(
            json.dumps(
                report.jsonable(
                    {"rules": summary, "months": [{"month": m["month"], "rules": m["rules"]} for m in months]}
                ),
                indent=1,
            )
        )
        return
    random_rate = summary[0]["random_hit_rate"] if summary else float("nan")
    print(
        f"the random channel's hit rate: {random_rate:.1%}"
        if random_rate == random_rate
        else "the random channel has no finished inspections: nothing to compare the rules with"
    )
    print(
        f"{'rule':32s} {'fired':>7s} {'selected':>8s} {'found':>6s}  {'hit rate [95%]':22s} "
        f"{'minus random [95%]':24s} {'credited':>8s}  flags"
    )
    for r in summary:
        rate = f"{r['hit_rate']:.1%} [{r['low']:.1%}, {r['high']:.1%}]" if r["finished"] else "-"
        vs = (
            f"{r['vs_random']:+.1%} [{r['vs_random_low']:+.1%}, {r['vs_random_high']:+.1%}]"
            if r["vs_random"] == r["vs_random"]
            else "-"
        )
        share = (
            f"{r['share_of_detections']:.1%}" if r["share_of_detections"] == r["share_of_detections"] else "-"
        )
        print(
            f"{r['rule']:32s} {r['fired']:7d} {r['inspected']:8d} {r['found']:6d}  {rate:22s} {vs:24s} "
            f"{share:>8s}  " + ", ".join(r["flags"])
        )
    print(
        "credited: each find shared in equal parts among the rules that fired on it (the column adds up to "
        "the rules' part of all finds); flags 'below random' when the whole interval of the difference is "
        "under 0"
    )


@rules_app.command("derive")
def rules_derive(
    folder: Path = typer.Argument(..., metavar="DIR", help="an imported log"),
    train_until: str = typer.Option(..., "--train-until", help="last date of the training period"),
    min_support: int = typer.Option(30, "--min-support", min=1, help="rows a group needs"),
    min_rate: float = typer.Option(0.4, "--min-rate", min=0, max=1, help="violation rate a group needs"),
    out: Path = typer.Option(..., "--out", help="the draft rules file to write"),
) -> None:
    """Draft a rules file from the training period (HS6, headings, origins, heading x origin), each
    rule's description giving its support and rate, for an analyst to review."""
    need("sim", *NEEDS)
    from engine.rules import RuleSet
    from replay import log as logs
    from replay.derive import draft, to_yaml

    try:
        until = dt.date.fromisoformat(train_until)
    except ValueError:
        fail(f"--train-until {train_until!r}: expected a date such as 2020-12-31")
    try:
        rules = draft(logs.read(folder), until, min_support, min_rate)
        if not rules["rules"]:
            fail(
                f"no group of the training period has {min_support} rows at {min_rate:.0%}: lower the "
                f"thresholds"
            )
        text = to_yaml(rules)
        RuleSet.from_text(text, str(out))  # the draft must load as any rules file does
    except InputError as e:
        fail(str(e))
    out.write_text(text)
    console(stderr=True).print(
        f"wrote {len(rules['rules'])} draft rules to {out}; evaluate them on the later period with "
        f"`doublerandom evaluate {folder} --rules {out} --from {until + dt.timedelta(days=1)}`",
        highlight=False,
    )


model_app = typer.Typer(
    no_args_is_help=True,
    help="A learned risk score trained on an imported log (the model extra: doublerandom\\[model]).",
)
app.add_typer(model_app, name="model")


def _dates(*texts: str) -> list[dt.date]:
    try:
        return [dt.date.fromisoformat(t) for t in texts]
    except ValueError:
        fail(f"dates are YYYY-MM-DD, got {', '.join(texts)}")
        raise  # unreachable: fail exits


@model_app.command("train")
def model_train(
    folder: str = typer.Argument(
        ..., metavar="DIR|DB", help="an imported log, or a live office's database (what it decided and found)"
    ),
    until: str = typer.Option(..., "--until", help="train on declarations before this date"),
    valid_until: str = typer.Option(
        ..., "--valid-until", help="stop early on, and report, declarations from --until to this date"
    ),
    out: Path = typer.Option(..., "--out", help="the model file (JSON) to write"),
    calibrate: bool = typer.Option(
        False, "--calibrate", help="recalibrate the probability on the validation period (Platt)"
    ),
) -> None:
    """Train gradient-boosted trees (LightGBM) on the log's inspected declarations before --until,
    stopping early on the period up to --valid-until; the file records the periods, the features, the
    library version, the validation figures and a fingerprint."""
    need("sim", *NEEDS)
    need("model", "lightgbm")
    from replay import learn
    from replay import log as logs

    start, end = _dates(until, valid_until)
    try:
        model = learn.train(logs.read(folder), start, end, calibrate=calibrate)
    except InputError as e:
        fail(str(e))
    model.save(out)
    at5 = model.meta["validation"]["0.05"]
    console(stderr=True).print(
        f"{model.meta['rows']['train']:,} declarations trained, {model.meta['iterations']} trees; "
        f"validation ({until} to {valid_until}) precision at 5%: {at5['precision']:.1%} "
        f"[{at5['precision_low']:.1%}, {at5['precision_high']:.1%}]; wrote {out}",
        highlight=False,
    )


@model_app.command("evaluate")
def model_evaluate(
    folder: str = typer.Argument(
        ..., metavar="DIR|DB", help="an imported log, or a live office's database (what it decided and found)"
    ),
    model_file: Path = typer.Option(..., "--model", help="a model file from `model train`"),
    start: str = typer.Option(..., "--from", help="evaluate declarations from this date"),
    rules: List[Path] = typer.Option([], "--rules", help="rules files to compare at the same budgets"),
    seed: int = typer.Option(1, "--seed"),
) -> None:
    """Precision at 1, 2, 5 and 10% of declarations for the model, each rules file (its risk scores'
    top) and random, with 95% intervals; the same on the declarations that are no copy of a training
    row (same goods code, mass and value), which a model cannot simply look up; and the features that
    carry the model."""
    need("sim", *NEEDS)
    need("model", "lightgbm")
    import numpy as np

    from engine.integrity import FeedbackPolicy
    from engine.rules import RuleSet
    from engine.selection import SelectionPolicy
    from replay import learn
    from replay import log as logs
    from replay.evaluate import decide

    (since,) = _dates(start)
    try:
        model, frame = learn.load(model_file), logs.read(folder)
        keep = (frame["declared_at"].dt.date >= since).to_numpy()
        scores = {"model": model.score(frame)[keep]}
        for path in rules:  # the rules' risk score, the whole log replayed so the standing builds up
            decided = decide(
                frame, RuleSet.load(path), SelectionPolicy(random_ratio=0.0), seed, FeedbackPolicy()
            )
            scores[f"rules {path.stem}"] = decided["score"][keep]
    except InputError as e:
        fail(str(e))
    y = frame["violation"].fillna(False).to_numpy(bool)[keep]
    if not keep.any():
        fail(f"no declarations from {start} in {folder}")
    scores["random"] = np.zeros(keep.sum())
    novel = ~learn.seen_in_training(frame, dt.date.fromisoformat(model.meta["trained_until"]))[keep]
    print(
        f"{keep.sum():,} declarations from {start}, violation rate {y.mean():.1%}; {novel.sum():,} of them "
        f"({novel.mean():.0%}) are no copy of a training row"
    )
    print(f"{'scored by':24s} {'rows':8s} " + " ".join(f"{'at ' + f'{b:.0%}':>22s}" for b in learn.BUDGETS))
    for name, score in scores.items():
        for rows, mask in (("all", np.ones(len(y), bool)), ("novel", novel)):
            figures = learn.precision_at(score[mask], y[mask], seed=seed)
            cells = [
                f"{f['precision']:6.1%} [{f['precision_low']:.1%}, {f['precision_high']:.1%}]".rjust(22)
                for f in figures.values()
            ]
            print(f"{name:24s} {rows:8s} " + " ".join(cells))
    print(
        "features by share of the model's gain: "
        + ", ".join(f"{n} {g:.0%}" for n, g in learn.importance(model))
    )


@model_app.command("report")
def model_report(
    folder: str = typer.Argument(
        ..., metavar="DIR|DB", help="an imported log, or a live office's database (what it decided and found)"
    ),
    model_file: Path = typer.Option(..., "--model", help="a model file from `model train`"),
    start: str = typer.Option(..., "--from", help="report the months from this date"),
    budget: float = typer.Option(
        0.05, "--budget", min=0.001, max=1, help="the share of declarations at the top"
    ),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also draw the report to this PNG"),
) -> None:
    """Month by month: the score's drift against its validation period (population stability index),
    the input that moved most, and the precision at the budget with its 95% interval, flagged where it
    lies wholly under the validation precision's lower bound; then the calibration curve over the
    months' inspected declarations."""
    need("sim", *NEEDS)
    need("model", "lightgbm")
    from replay import learn
    from replay import log as logs

    (since,) = _dates(start)
    try:
        model, frame = learn.load(model_file), logs.read(folder)
        if f"{budget:g}" not in model.meta["validation"]:
            fail(f"--budget {budget:g}: the model was validated at {', '.join(model.meta['validation'])}")
        months = learn.monthly_report(model, frame, since, budget)
        labelled = (frame["declared_at"].dt.date >= since) & frame["violation"].notna()
        curve = learn.calibration(
            model.score(frame, labelled), frame.loc[labelled, "violation"].astype(bool).to_numpy()
        )
    except InputError as e:
        fail(str(e))
    if months.empty:
        fail(f"no declarations from {start} in {folder}")
    floor = model.meta["validation"][f"{budget:g}"]["precision_low"]
    print(
        f"precision at {budget:.0%} in validation: at least {floor:.1%} (95% lower bound); "
        "a score PSI over 0.25: the inputs shifted"
    )
    for m in months.itertuples():
        flag = "  BELOW VALIDATION" if m.below_validation else ""
        shift = "  inputs shifted" if m.score_psi > 0.25 else ""
        print(
            f"{m.month}  {m.declarations:7,d} declarations  score PSI {m.score_psi:5.2f}  most moved "
            f"{m.top_input} {m.top_input_psi:5.2f}  precision "
            f"{m.precision:6.1%} [{m.precision_low:.1%}, {m.precision_high:.1%}]{flag}{shift}"
        )
    print("calibration over the months' inspected declarations (bins of equal count):")
    for b in curve.itertuples():
        inside = "" if b.rate_low <= b.mean_score <= b.rate_high else "  off"
        print(
            f"  bin {b.bin:2d}  {b.declarations:6,d}  mean score {b.mean_score:6.1%}  observed "
            f"{b.violation_rate:6.1%} [{b.rate_low:.1%}, {b.rate_high:.1%}]{inside}"
        )
    if plot is not None:
        from replay import plots

        plots.model_report(curve, months, floor, budget, plot)
        console(stderr=True).print(f"wrote {plot}", highlight=False)
