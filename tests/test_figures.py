"""The monthly figures live and simulated go by the same names: a figure both can compute is
computed under one name in the live report (engine/report.py) and in monthly.csv
(simulation/metrics.py), and every figure only one side has is listed here with the reason, so a
figure added to one side alone, or renamed on one, fails this test."""

from __future__ import annotations

import pandas as pd

from engine import report
from simulation import metrics
from tests.conftest import ROOT

# The live report's figures a simulated month does not have, and why.
LIVE_ONLY = {
    "rules": "per rule fired, inspected, found: `doublerandom rules report` on a replay; not a column",
}
# The simulation's figures a live store cannot know: the simulated world's truth, queues and settings.
SIMULATED_ONLY = {
    "backlog_end",
    "dishonest_enterprises",
    "enterprises_entered",
    "facility_utilization",
    "high_risk_enterprises",
    "inspection_rate_advanced_certified",
    "inspection_rate_dishonest",
    "inspection_rate_general",
    "inspection_rate_general_certified",
    "inspector_utilization",
    "instruction_rate",
    "mean_clearance_released_h",
    "mean_wait_h",
    "noncompliance_ci_high",
    "noncompliance_ci_low",
    "noncompliance_defined",
    "noncompliance_estimate",
    "noncompliance_true",
    "p95_clearance_h",
    "random_ratio",
    "target_share",
    "violations_found",
    "violations_missed",
    "violations_true",
}


def _live_names() -> set[str]:
    rows = [
        (
            "2026-06-01T10:00:00",
            {"selected": True, "channel": "random", "rules": [], "lane": "red"},
            "physical",
            "normal",
        )
    ]
    return set(report.monthly(rows)[0])


def test_live_and_simulated_months_share_their_names():
    live, simulated = _live_names(), set(metrics.COLUMNS)
    assert live - simulated == set(LIVE_ONLY)
    assert simulated - live == SIMULATED_ONLY
    shared = live & simulated
    assert {
        "random_selected",
        "targeted_selected",
        "credit_selected",
        "instructed_selected",
        "inspections",
        "random_dispatch_share",
        "pure_random_share",
        "hit_rate_instructed",
    } <= shared


def test_one_name_per_channel_live_and_simulated():
    """The channel a risk officer's order comes by is `instructed` in the live report, in monthly.csv's
    column names and in events.parquet (it was `instruction` in the events)."""
    from simulation import run, scenario

    spec = scenario.load(
        ROOT / "scenarios" / "baseline.yaml",
        [
            "horizon.warmup_months=0",
            "horizon.days=5",
            "arrivals.per_day=800",
            "population.enterprises=2000",
            "instruction.rate=0.05",
        ],
    )
    result = run(spec, seed=2)
    channels = set(result.events["channel"])
    assert "instructed" in channels and "instruction" not in channels and "instructed" in report.CHANNELS
    assert (result.events["channel"] == "instructed").sum() == result.monthly["instructed_selected"].sum()


def test_the_three_shares_go_together_live_simulated_and_in_the_summary():
    """The README's glossary: the computer-selection, pure random and credit shares, one name each,
    all three wherever one is shown."""
    from simulation import metrics

    assert set(report.SHARES) <= _live_names() and set(report.SHARES) <= set(metrics.COLUMNS)
    assert set(report.SHARES) <= {name for m in metrics.RUN_METRICS for name in m.names}
    readme = (ROOT / "README.md").read_text()
    for name, column in (
        ("computer-selection share", "random_dispatch_share"),
        ("pure random share", "pure_random_share"),
        ("credit share", "credit_share"),
    ):
        assert f"| **{name}** | `{column}` |" in readme
    for retired in ("random-dispatch share", "random-selection share", "computer random selection"):
        assert retired not in readme.lower()


def test_a_simulated_month_read_as_a_live_store_gives_the_same_figures():
    """One computation: a simulated run's declarations turned into the live store's report rows give,
    through the live report, exactly the simulated monthly.csv's values of every shared figure."""
    from simulation import run, scenario

    spec = scenario.load(
        ROOT / "scenarios" / "baseline.yaml",
        [
            "horizon.warmup_months=0",
            "horizon.days=40",
            "arrivals.per_day=400",
            "population.enterprises=2000",
            "instruction.rate=0.02",
            "inspectors.count=1",  # overloaded: many inspections unfinished at the end, finished < selected
        ],
    )
    result = run(spec, seed=4)
    rows = []
    for month, total in result.monthly.set_index("month").iterrows():
        events = result.events[result.events["month"] == month]
        for e in events.itertuples():
            selected = e.channel != "instructed"
            lane = "yellow" if e.inspection_type == "document" else "red"
            cutoff = 0.0 if e.scored else None  # the live decision's cutoff: taken by score under a rate
            decision = {
                "selected": selected,
                "channel": e.channel,
                "rules": [],
                "lane": lane,
                "cutoff": cutoff,
            }
            rows.append((f"{month}-01", decision, e.inspection_type, e.outcome or None))
        for lane in ("green", "blue"):  # the declarations nobody inspected
            released = {"selected": False, "channel": "none", "rules": [], "lane": lane}
            rows += [(f"{month}-01", released, None, None)] * int(total[f"lane_{lane}"])
    live = pd.DataFrame(report.monthly(rows)).set_index("month")[report.FIGURE_NAMES]
    simulated = result.monthly.set_index("month")[report.FIGURE_NAMES]
    assert len(live) == 2 and simulated["instructed_selected"].sum() > 0
    assert 0 < simulated["finished_random"].sum() < simulated["random_selected"].sum()
    pd.testing.assert_frame_equal(live, simulated, check_dtype=False)
    # the long table (monthly_long.csv, `report --table long`) too, bounds included
    live_long = pd.DataFrame(report.long_rows(report.monthly(rows)))
    simulated_long = pd.DataFrame(report.long_rows(result.monthly.to_dict("records")))
    assert len(live_long) == 2 * 32 and set(live_long["channel"]) == {*report.CHANNELS, "all"}
    pd.testing.assert_frame_equal(live_long, simulated_long, check_dtype=False)


def test_the_long_table_is_the_same_file_live_and_simulated(tmp_path):
    """`report --format csv --table long` on a live office and monthly_long.csv of a run: the same
    columns, the same channels and figures, bounds inside 0..1 for every rate and share."""
    import json

    from typer.testing import CliRunner

    from doublerandom.cli import app
    from simulation import run, scenario

    spec = scenario.load(
        ROOT / "scenarios" / "baseline.yaml",
        ["horizon.warmup_months=0", "horizon.days=5", "arrivals.per_day=400", "population.enterprises=800"],
    )
    run(spec, seed=1).write(tmp_path / "sim", plots=False)
    simulated = pd.read_csv(tmp_path / "sim" / "monthly_long.csv")
    db = tmp_path / "office.db"
    lines = (ROOT / "scenarios" / "declarations" / "sample.jsonl").read_text().splitlines()[:40]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    chosen = runner.invoke(
        app,
        ["select", "--rules", str(ROOT / "scenarios/rules/baseline.yaml"), "--seed", "1", "--ratio", "0.5",
         "--input", str(tmp_path / "in.jsonl"), "--db", str(db),
         "--enterprises", str(ROOT / "scenarios/declarations/enterprises.csv")],
    )  # fmt: skip
    assert chosen.exit_code == 0, chosen.output
    assert any(json.loads(line)["selected"] for line in chosen.stdout.splitlines() if line.startswith("{"))
    out = runner.invoke(app, ["report", str(db), "--format", "csv", "--table", "long"])
    assert out.exit_code == 0, out.output
    live = pd.read_csv(__import__("io").StringIO(out.stdout))
    assert list(live.columns) == list(simulated.columns) == list(report.LONG_COLUMNS)
    assert set(zip(live["channel"], live["figure"])) == set(zip(simulated["channel"], simulated["figure"]))
    for frame in (live, simulated):
        bounded = frame.dropna(subset=["low"])
        assert len(bounded) and ((bounded["low"] >= 0) & (bounded["high"] <= 1)).all()


def test_the_computer_selection_share_is_told_apart_into_drawn_and_scored():
    """`drawn_share` (random draw, credit floor, rules' sampling under 1: China's 55% counts these)
    and `scored_share` (targeted without a draw) add up to the computer-selection share. Under an
    expected rate the targeted channel is all scored (ranked); under per-rule sampling only the hits of
    rules that inspect every hit are (the goods list, at rate 1), not those the new-firm and high-risk
    rules drew at 0.5 and 0.3."""
    from simulation import run, scenario

    small = [
        "horizon.warmup_months=0",
        "horizon.days=20",
        "arrivals.per_day=800",
        "population.enterprises=2000",
        "inspectors.count=20",
    ]
    for extra, scored in (([], True), (["policy.expected_rate=null"], False)):
        m = run(scenario.load(ROOT / "scenarios" / "baseline.yaml", [*small, *extra]), seed=3).monthly
        total = m["drawn_share"] + m["scored_share"]
        assert (abs(total - m["random_dispatch_share"]) < 1e-12).all()
        if scored:
            assert (m["scored_selected"] == m["targeted_selected"]).all() and m["scored_share"].min() > 0
        else:
            assert 0 < m["scored_selected"].sum() < m["targeted_selected"].sum()
