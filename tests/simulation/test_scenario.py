"""Scenario files: overrides by dotted path, and bad files refused with file, field and problem."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.errors import InputError
from simulation import scenario
from simulation.cli import app
from tests.conftest import ROOT

BASELINE = ROOT / "scenarios" / "baseline.yaml"
runner = CliRunner()


def test_baseline_loads_and_overrides_apply():
    spec = scenario.load(BASELINE, ["policy.random_ratio=0.05", "inspectors.count=40", "horizon.months=2"])
    assert spec.policy.random_ratio == 0.05 and spec.sites[0].inspectors.count == 40
    assert (
        spec.horizon.measured_start == dt.date(2028, 1, 1) and spec.horizon.n_days == 731 + 59
    )  # 2 warm-up years
    assert spec.digest() != scenario.load(BASELINE).digest()


BAD = [
    ("policy.random_ratio=1.5", "field 'policy.random_ratio': Input should be less than or equal to 1"),
    ("arrivals.per_day=-3", "field 'arrivals.per_day'"),
    ("arrivals.hourly_profile=[1, 2]", "field 'arrivals.hourly_profile'"),
    ("arrivals.monthly_factor={13: 0.5}", "months are 1-12"),
    ("population.credit_mix={general: 0.5, dishonest: 0.2}", "sum to 1, they sum to 0.7"),
    ("population.violation.general.mean=2", "field 'population.violation.general.mean'"),
    ("inspectors.shifts=[{hours: '8 to 4'}]", "a shift is 'HH:MM-HH:MM'"),
    ("inspectors.qualified={xray: 1.0}", "field 'inspectors.qualified.xray.[key]'"),
    ("inspection.service.physical={dist: gamma, mean_h: 1}", "field 'inspection.service.physical.dist'"),
    ("inspection.detection={physical: 0.9}", "detection needs an entry for ['document', 'scan']"),
    ("release.delay={dist: exponential, mean_h: 0}", "only a fixed time may be 0"),
    ("facilities={hangar: 3}", "field 'facilities.hangar.[key]'"),
    ("rules=rules/missing.yaml", "field 'rules': no such file"),
    ("horizon.colour=red", "field 'horizon.colour': Extra inputs are not permitted"),
    ("population.overrides={999999: 0.5}", "overrides need enterprise numbers"),
    ("inspection.departments={prison: 1.0}", "departments are shares"),
    ("sites=[{name: A, share: 1}, {name: A, share: 2}]", "site names must differ"),
    ("sites=[{name: 'a b', share: 1}]", "field 'sites[0].name'"),
    ("sites=[{name: A, share: 0}]", "field 'sites[0].share'"),
    ("goods.risk=risk/missing.csv", "field 'goods.risk': no such file"),
    ("horizon.warmup_months=-1", "field 'horizon.warmup_months'"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_bad_scenarios_name_file_field_and_problem(override, message):
    with pytest.raises(InputError) as refused:
        scenario.load(BASELINE, [override])
    assert str(refused.value).startswith(str(BASELINE))
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("seed: [unclosed", "not valid YAML at line 1"),
        ("- a\n- list\n", "a scenario is a mapping"),
    ],
)
def test_unreadable_scenarios(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        scenario.load(path)


def test_bad_override_syntax():
    with pytest.raises(InputError, match="expected path=value"):
        scenario.load(BASELINE, ["policy.random_ratio"])
    with pytest.raises(InputError, match="'seed' is not a section"):
        scenario.load(BASELINE, ["seed.x=1"])


def test_cli_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    done = runner.invoke(
        app,
        [
            "run",
            str(BASELINE),
            "--out",
            str(out),
            "--seed",
            "4",
            "--set",
            "horizon.warmup_months=1",
            "--set",
            "horizon.days=5",
            "--set",
            "arrivals.per_day=600",
            "--set",
            "inspectors.count=25",
        ],
    )
    assert done.exit_code == 0, done.output
    names = {p.name for p in out.iterdir()}
    assert {
        "events.parquet",
        "monthly.csv",
        "summary.json",
        "hourly.csv",
        "random_dispatch_share.png",
        "hit_rates.png",
        "utilization.png",
        "clearance.png",
        "compliance_estimate.png",
    } <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 4 and len(summary["scenario_hash"]) == 64
    assert summary["rules_version"].startswith("kcs-derived-2026.11+") and summary["package_version"]
    assert summary["scenario_settings"]["horizon"]["days"] == 5
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly["declarations"].sum() == summary["declarations"]
    events = pd.read_parquet(out / "events.parquet")
    assert len(events) == summary["inspections"]
    # the warm-up month is simulated but in no output; the calibration table is printed and kept
    assert list(monthly["month"]) == ["2026-02"] and events["month"].eq("2026-02").all()
    assert {row["name"] for row in summary["calibration"]} >= {"inspection rate", "drawn share"}
    assert "calibration" in done.output and "drawn share" in done.output


def test_cli_run_refuses_a_bad_scenario_without_a_traceback(tmp_path):
    done = runner.invoke(
        app, ["run", str(BASELINE), "--set", "policy.random_ratio=2", "--out", str(tmp_path)]
    )
    assert (
        done.exit_code == 2
        and "policy.random_ratio" in done.stderr
        and isinstance(done.exception, SystemExit)
    )


def test_a_scenario_can_extend_another(tmp_path):
    adaptive = scenario.load(ROOT / "scenarios" / "adaptive.yaml")
    baseline = scenario.load(BASELINE)
    assert adaptive.adaptive is not None and adaptive.adaptive.end_share == 0.85
    assert adaptive.sites == baseline.sites and adaptive.policy == baseline.policy
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: nowhere.yaml\nname: v\n")
    with pytest.raises(InputError, match="field 'extends': no such file"):
        scenario.load(variant)


# ---------------------------------------------------------------- one shape: sites

NATIONAL = ROOT / "scenarios" / "national.yaml"
TWO_SITES = (
    "sites=[{name: A, share: 1, inspectors: {count: 10}}, {name: B, share: 1, inspectors: {count: 20}}]"
)


@pytest.mark.parametrize(
    "override, field",
    [("inspectors.count=5", "inspectors.count"), ("facilities.physical_bay=1", "facilities")],
)
def test_a_setting_a_multi_site_scenario_cannot_use_is_an_error_not_a_no_op(override, field):
    """They were silently ignored: capacity tuned on national.yaml changed nothing."""
    with pytest.raises(InputError, match=f"field '{field}': with sites, each site has its own"):
        scenario.load(NATIONAL, [override])
    with pytest.raises(InputError, match=f"field '{field}'"):
        scenario.load(BASELINE, [TWO_SITES, override])


def test_every_site_is_addressed_by_name_or_scaled_together():
    national = scenario.load(NATIONAL)
    counts = {s.name: s.inspectors.count for s in national.sites}
    named = scenario.load(NATIONAL, ["sites[SHA].inspectors.count=7"])
    assert {s.name: s.inspectors.count for s in named.sites} == counts | {"SHA": 7}
    halved = scenario.load(NATIONAL, ["inspectors.scale=0.5"])
    assert {s.name: s.inspectors.count for s in halved.sites} == {
        k: max(1, round(v * 0.5)) for k, v in counts.items()
    }
    with pytest.raises(InputError, match="no element named 'XXX'"):
        scenario.load(NATIONAL, ["sites[XXX].inspectors.count=7"])
    one = scenario.load(BASELINE, ["inspectors.count=40"])  # one site: the top-level fields are it
    assert [(s.name, s.inspectors.count) for s in one.sites] == [("PORT", 40)]


def test_sites_inherit_the_offices_inspector_settings_and_may_override_them():
    spec = scenario.load(
        BASELINE,
        [
            "inspectors.weighting=uniform",
            "inspectors.per_item=2",
            "sites=[{name: A, share: 1}, {name: B, share: 1, inspectors: {weighting: workload}}]",
        ],
    )
    a, b = spec.sites
    assert (a.inspectors.weighting, b.inspectors.weighting) == ("uniform", "workload")
    assert a.inspectors.per_item == b.inspectors.per_item == 2
    assert a.inspectors.shifts == b.inspectors.shifts == scenario.load(BASELINE).sites[0].inspectors.shifts


def test_each_sites_dispatcher_honours_its_own_weighting():
    import random

    import simpy

    from simulation.dispatcher import Dispatcher, build_roster

    spec = scenario.load(
        BASELINE,
        [
            "sites=[{name: A, share: 1, inspectors: {weighting: uniform, per_declaration: 3}},"
            " {name: B, share: 1, inspectors: {weighting: workload, rotation_days: 2}}]"
        ],
    )
    roster, env = build_roster(spec), simpy.Environment()
    a, b = (Dispatcher(env, roster, spec, random.Random(1), name) for name in ("A", "B"))
    assert (a.roster.weighting, a.roster.per_declaration) == ("uniform", 3)
    assert (b.roster.weighting, b.rotation_h) == ("workload", 48)
