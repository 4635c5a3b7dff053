"""Replaying a real log: the Korean file imports as it is, bad rows are reported and skipped, the
evaluation never looks ahead, and its figures agree with theory and with an independent count."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from doublerandom.cli import app
from engine.randomness import stream_generator
from engine.rules import RuleSet
from engine.selection import LANES, SelectionPolicy
from replay import log as logs
from replay.evaluate import evaluate
from replay.mapping import Mapping
from tests.conftest import ROOT

KCS = ROOT / "tests" / "data" / "kcs_test_head.csv"  # 3,000 rows of the Korean test split, verbatim
MAPPING = Mapping.load(ROOT / "scenarios" / "mappings" / "kcs.yaml")


@pytest.fixture(scope="module")
def kcs(tmp_path_factory):
    out = tmp_path_factory.mktemp("kcs")
    report = logs.import_log([KCS], MAPPING, out)
    return report, logs.read(out)


def test_the_korean_file_imports_as_it_is(kcs):
    report, log = kcs
    raw = pd.read_csv(KCS, dtype=str, keep_default_na=False)
    assert report.rows_read == report.rows_kept == 3000 and report.rows_refused == 0
    assert (raw["Courier ID"] == "").sum() > 2000  # empty courier ids are simply not read
    assert log["hs_code"].str.fullmatch(r"\d{6}").all() and log["id"].str.startswith("KR").all()
    assert log["violation"].mean() == pytest.approx(raw["Fraud"].astype(int).mean())
    assert log["critical"].sum() == (raw["Critical Fraud"] == "2").sum()
    assert report.only_inspected


def test_codes_a_spreadsheet_turned_into_numbers_get_their_zeros_back(tmp_path):
    raw = pd.read_csv(KCS, dtype=str, keep_default_na=False).head(50)
    raw.loc[0, "HS6 Code"] = "20130"  # 020130 saved as a number
    raw.loc[1, "HS6 Code"] = "30289.0"
    raw.to_csv(tmp_path / "saved.csv", index=False)
    log = logs.read(logs.import_log([tmp_path / "saved.csv"], MAPPING, tmp_path / "out") and tmp_path / "out")
    assert set(log["hs_code"]) >= {"020130", "030289"}


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path):
    raw = pd.read_csv(KCS, dtype=str, keep_default_na=False).head(20)
    raw.loc[2, "Date"] = "2021-02-30"
    raw.loc[5, "Net Mass"] = "heavy"
    raw.loc[7, "Country of Origin"] = "KOR"
    raw.loc[9, "Declaration ID"] = ""
    raw.loc[11, "Fraud"] = "maybe"
    raw.to_csv(tmp_path / "bad.csv", index=False)
    report = logs.import_log([tmp_path / "bad.csv"], MAPPING, tmp_path / "out")
    lines = {r["line"]: r["reason"] for r in report.first_refused}
    assert sorted(lines) == [4, 7, 9, 11, 13]  # the header is line 1, row k is line k + 2
    assert "declared_at" in lines[4] and "net_mass_kg" in lines[7] and "origin_country" in lines[9]
    assert "id" in lines[11] and "violation" in lines[13]
    assert report.rows_kept == 15 and len(logs.read(tmp_path / "out")) == 15


def test_a_missing_file_or_column_is_one_clear_error(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "nope.csv"),
            "--mapping",
            str(ROOT / "scenarios/mappings/kcs.yaml"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert (
        missing.exit_code != 0
        and "no such file" in missing.output
        and isinstance(missing.exception, SystemExit)
    )
    (tmp_path / "thin.csv").write_text("Declaration ID,Date\n1,2021-01-01\n")
    thin = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "thin.csv"),
            "--mapping",
            str(ROOT / "scenarios/mappings/kcs.yaml"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert thin.exit_code != 0 and "lacks" in thin.output and isinstance(thin.exception, SystemExit)


def test_no_decision_sees_an_outcome_of_its_own_day_or_later(kcs):
    """A firm's first problem is logged on its first day: a high-risk rule may fire on its later
    declarations only, never on that day's (a look-ahead would)."""
    _, log = kcs
    log = log.copy()
    firm = log["enterprise_id"].value_counts().index[0]
    mine = log.index[log["enterprise_id"] == firm]
    first_day = log.loc[mine[0], "declared_at"].normalize()
    log.loc[mine, "violation"] = False
    log.loc[mine[0], "violation"] = True  # planted: its only problem, on its first day
    rules = RuleSet.from_dict(
        {
            "version": "t",
            "rules": [
                {
                    "id": "FLAGGED",
                    "description": "flagged",
                    "inspection": "physical",
                    "when": {"field": "enterprise.high_risk", "eq": True},
                }
            ],
        }
    )
    from engine.integrity import FeedbackPolicy
    from replay.evaluate import decide

    hits = decide(log, rules, SelectionPolicy(random_ratio=0.0), 1, FeedbackPolicy())["hits"][:, 0]
    same_day = mine[log.loc[mine, "declared_at"].dt.normalize() == first_day]
    later = mine[log.loc[mine, "declared_at"].dt.normalize() > first_day]
    assert len(later) > 0 and not hits[same_day].any() and hits[later].all()


def test_random_precision_is_the_logs_rate_within_its_interval(kcs):
    _, log = kcs
    result = evaluate(
        log, RuleSet.load(ROOT / "scenarios/rules/never.yaml"), SelectionPolicy(random_ratio=0.3)
    )
    f = result.figures["random"]
    assert f["precision_low"] <= result.base_rate <= f["precision_high"]
    assert f["selection_rate_low"] <= 0.3 <= f["selection_rate_high"]


def test_a_derived_rule_on_a_later_period_matches_an_independent_count(kcs):
    """HIGH-RISK-GOODS (derived on 2020) on April 2021: fired and found equal a plain pandas count, and
    the reported interval covers the rate that count gives."""
    _, log = kcs
    rules = RuleSet.load(ROOT / "scenarios/rules/kcs_derived.yaml")
    result = evaluate(
        log, rules, SelectionPolicy(random_ratio=0.05), budget=0.084, start=dt.date(2021, 4, 10)
    )
    later = log[log["declared_at"] >= "2021-04-10"]
    import yaml

    codes = yaml.safe_load((ROOT / "scenarios/rules/kcs_derived.yaml").read_text())["lists"]["high_risk_hs6"]
    listed = later["hs_code"].isin(codes)
    r = result.rules["HIGH-RISK-GOODS"]
    assert (r["fired"], r["found"]) == (int(listed.sum()), int((listed & later["violation"]).sum()))
    assert r["low"] <= later.loc[listed, "violation"].mean() <= r["high"]
    assert r["hit_rate"] > 2 * result.base_rate  # it still ranks: the lift found on 2021 Q1 holds
    budget = result.figures["budget"]
    assert budget["selected"] == round(0.084 * len(later))


def test_inverse_probability_weights_recover_a_known_population_rate(tmp_path):
    """A population of 40,000 with a known violation rate, logged only where an inspection drew it
    (risky goods 8x likelier): the raw log overstates the rate, the weighted one recovers it within
    3 standard errors of the Hajek estimator."""
    rng = np.random.default_rng(11)
    n = 40_000
    risky = rng.random(n) < 0.2
    y = rng.random(n) < np.where(risky, 0.12, 0.02)
    p = np.where(risky, 0.4, 0.05)
    seen = rng.random(n) < p
    log = pd.DataFrame(
        {
            "id": [f"D{i}" for i in range(n)],
            "declared_at": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 90, n)), unit="D"),
            "enterprise_id": [f"E{i % 500}" for i in range(n)],
            "hs_code": np.where(risky, "930690", "847130"),
            "origin_country": "CN",
            "departure_country": "CN",
            "trade_mode": "general",
            "transport_mode": "sea",
            "customs_office": "OFF-1",
            "declared_value": 100.0,
            "net_mass_kg": 1.0,
            "quantity": 1.0,
            "violation": y,
            "critical": False,
            "category": None,
            "revenue": 0.0,
            "inspected": True,
            "inclusion_probability": p,
        }
    )[seen].reset_index(drop=True)
    result = evaluate(
        log, RuleSet.load(ROOT / "scenarios/rules/never.yaml"), SelectionPolicy(random_ratio=0.1)
    )
    w, ys = 1 / log["inclusion_probability"].to_numpy(), log["violation"].to_numpy(float)
    hajek = (w * ys).sum() / w.sum()
    se = np.sqrt((w**2 * (ys - hajek) ** 2).sum()) / w.sum()
    assert result.weighted and result.base_rate == pytest.approx(hajek)
    assert abs(hajek - y.mean()) < 3 * se and ys.mean() > y.mean() + 3 * se  # unweighted is biased


def test_evaluate_compares_policies_and_draws_the_plot(kcs, tmp_path):
    _, log = kcs
    folder = tmp_path / "log"
    logs.import_log([KCS], MAPPING, folder)
    out = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(folder),
            "--rules",
            str(ROOT / "scenarios/rules/baseline.yaml"),
            "--rules",
            str(ROOT / "scenarios/rules/kcs_derived.yaml"),
            "--budget",
            "0.084",
            "--from",
            "2021-04-15",
            "--explain",
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "every row was inspected" in out.stdout and "HIGH-RISK-GOODS" in out.stdout
    table = pd.read_csv(tmp_path / "eval" / "evaluation.csv")
    assert (
        set(table["policy"]) == {"baseline", "kcs_derived"}
        and (tmp_path / "eval" / "precision_recall.png").stat().st_size > 10_000
    )


def test_rules_report_flags_rules_on_a_replayed_log(kcs, tmp_path):
    """The baseline rules on April 2021: the 2026 solar campaign never fires; every flag 'below
    random' is a rule whose whole interval lies under the random channel's rate."""
    folder = tmp_path / "log"
    logs.import_log([KCS], MAPPING, folder)
    out = CliRunner().invoke(
        app,
        [
            "rules",
            "report",
            str(folder),
            "--rules",
            str(ROOT / "scenarios/rules/baseline.yaml"),
            "--ratio",
            "0.1",
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    rules = {r["rule"]: r for r in json.loads(out.stdout)["rules"]}
    assert rules["CAMPAIGN-SOLAR-ORIGIN"]["flags"] == ["never fires"]
    for r in rules.values():
        below = r["vs_random_high"] is not None and r["vs_random_high"] < 0
        assert ("below random" in r["flags"]) == below
        assert r["found"] <= r["inspected"] <= r["fired"]
        if r["vs_random"] is not None:  # the difference's interval holds it, and is wider than either rate's
            assert r["vs_random_low"] <= r["vs_random"] <= r["vs_random_high"]
            assert r["vs_random_high"] - r["vs_random_low"] >= r["high"] - r["low"]
    shares = [r["share_of_detections"] for r in rules.values() if r["share_of_detections"] is not None]
    assert 0 < sum(shares) <= 1 + 1e-9  # finds shared among the rules that fired on them: never over 100%


def test_the_difference_from_random_has_its_own_interval():
    """A rule at 10 of 200 against a random channel at 3 of 20: the rule's whole interval lies under
    the random point (the old flag said 'below random'), but the random rate is an estimate too, and
    the difference's interval still reaches zero."""
    from engine.report import difference, proportion

    assert proportion(10, 200)[2] < 3 / 20  # what the old flag compared
    d, low, high = difference(10, 200, 3, 20)
    assert low < d < 0 < high and d == pytest.approx(0.05 - 0.15)
    assert difference(10, 1000, 150, 1000)[2] < 0  # clearly below: the whole interval under zero
    assert difference(0, 0, 1, 10) == pytest.approx((float("nan"),) * 3, nan_ok=True)


def test_rules_report_reads_a_live_office_too(tmp_path):
    from tests.engine.test_report import busy as make_busy

    office = make_busy.__wrapped__(tmp_path)
    from engine import report

    months = report.monthly(office.store.report_rows())
    office.store.close()
    out = CliRunner().invoke(app, ["rules", "report", str(tmp_path / "office.db"), "--format", "json"])
    assert out.exit_code == 0, out.output
    rules = {r["rule"]: r for r in json.loads(out.stdout)["rules"]}
    for rule, r in rules.items():
        assert r["fired"] == sum(m["rules"].get(rule, {}).get("fired", 0) for m in months)


def test_drafted_rules_rest_on_what_their_descriptions_say(kcs, tmp_path):
    """Every drafted HS6 code has the support and rate asked for in the training period (recounted
    here with pandas); the draft loads as a rules file and evaluates on the later period."""
    folder = tmp_path / "log"
    logs.import_log([KCS], MAPPING, folder)
    out = CliRunner().invoke(
        app,
        [
            "rules",
            "derive",
            str(folder),
            "--train-until",
            "2021-04-15",
            "--min-support",
            "8",
            "--min-rate",
            "0.4",
            "--out",
            str(tmp_path / "draft.yaml"),
        ],
    )
    assert out.exit_code == 0, out.output
    draft = RuleSet.load(tmp_path / "draft.yaml")
    import yaml

    codes = yaml.safe_load((tmp_path / "draft.yaml").read_text())["lists"]["draft_hs6"]
    _, log = kcs
    train = log[log["declared_at"] <= "2021-04-15"]
    by_code = train.groupby("hs_code")["violation"].agg(["size", "mean"])
    assert codes and all(by_code.loc[c, "size"] >= 8 and by_code.loc[c, "mean"] >= 0.4 for c in codes)
    qualifying = by_code[(by_code["size"] >= 8) & (by_code["mean"] >= 0.4)]
    assert sorted(codes) == sorted(qualifying.index)
    later = evaluate(log, draft, SelectionPolicy(random_ratio=0.03), start=dt.date(2021, 4, 16))
    assert later.rows == int((log["declared_at"] >= "2021-04-16").sum())


def test_a_scenario_can_take_its_arrivals_from_an_imported_log(tmp_path):
    """Trace-driven: April 2021's 3,000 Korean declarations arrive on their days, from their
    importers, with their goods, and violate exactly where the log says so."""
    from simulation.model import run
    from simulation.scenario import load

    logs.import_log([KCS], MAPPING, tmp_path / "log")
    spec = load(
        ROOT / "scenarios/baseline.yaml",
        [
            "horizon.start=2021-04-01",
            "horizon.warmup_months=0",
            "horizon.days=30",
            f"arrivals.log={tmp_path / 'log'}",
            "population.enterprises=3000",
        ],
    )
    result = run(spec)
    log = logs.read(tmp_path / "log")
    assert result.summary["declarations"] == len(log) and result.summary["violations_true"] == int(
        log["violation"].sum()
    )
    from simulation.model import OfficeModel

    office = OfficeModel(spec, RuleSet.load(spec.path(spec.rules)), "vector")
    office.lodge_month(0, 0)  # a log: one "month", the whole of it
    decls = office.decls
    per_day = log.groupby(log["declared_at"].dt.day).size()
    arrivals = pd.Series(np.floor(decls.arrival_h / 24).astype(int) + 1).value_counts().sort_index()
    assert arrivals.to_numpy().tolist() == per_day.sort_index().to_numpy().tolist()
    assert sorted(decls.goods["hs_code"]) == sorted(log["hs_code"])
    assert np.nansum(decls.logged) == log["violation"].sum() and not np.isnan(decls.logged).any()
    # what a trace cannot represent is said, and the figures it cannot support are withheld
    s = result.summary
    warnings = " ".join(s["trace_warnings"])
    assert "a hit rate among them" in warnings and "no credit classes" in warnings
    assert s["noncompliance_true"] is None
    assert all(r["met"] is None for r in s["credit_rules"]) and all(
        r["met"] is None for r in s["calibration"]
    )


def test_a_log_with_more_importers_than_enterprises_is_one_clear_error(tmp_path):
    from engine.errors import InputError
    from simulation.model import run
    from simulation.scenario import load

    logs.import_log([KCS], MAPPING, tmp_path / "log")
    spec = load(
        ROOT / "scenarios/baseline.yaml",
        [
            "horizon.start=2021-04-01",
            "horizon.warmup_months=0",
            "horizon.days=30",
            f"arrivals.log={tmp_path / 'log'}",
            "population.enterprises=100",
        ],
    )
    with pytest.raises(InputError, match="population.enterprises"):
        run(spec)


def test_past_results_build_the_standing_through_the_feedback_policy(tmp_path):
    """The log's results, imported into a live office's integrity store in time order: the counters
    equal the log's, an enterprise with three problems within a year is dishonest, and the audit
    chain verifies and reconciles."""
    logs.import_log([KCS], MAPPING, tmp_path / "log")
    db = tmp_path / "office.db"
    from engine.office import Office

    Office(db).store.close()
    out = CliRunner().invoke(app, ["integrity", "import-results", str(db), str(tmp_path / "log")])
    assert out.exit_code == 0, out.output
    log = logs.read(tmp_path / "log")
    office = Office(db)
    counts = log.groupby("enterprise_id")["violation"].agg(["size", "sum"])
    busiest = counts["sum"].idxmax()
    firm = office.integrity.get(busiest)
    assert (firm.inspections, firm.problems) == (
        int(counts.loc[busiest, "size"]),
        int(counts.loc[busiest, "sum"]),
    )
    assert firm.credit_class.value == "dishonest" and counts.loc[busiest, "sum"] >= 3
    assert json.loads(out.stdout)["registered"] == len(counts)
    office.store.close()
    verified = CliRunner().invoke(app, ["audit", "verify", str(db)])
    assert verified.exit_code == 0, verified.output


def test_replayed_decisions_carry_the_engines_lanes(kcs):
    """Lanes come from the engine's one definition: yellow for a document check, red for scan or
    physical, green when released (the replay wrote red for every selection)."""
    from engine.integrity import FeedbackPolicy
    from replay.evaluate import decide, report_rows

    _, log = kcs
    rules = RuleSet.load(ROOT / "scenarios" / "rules" / "baseline.yaml")
    decided = decide(
        log, rules, SelectionPolicy(random_ratio=0.05, random_inspection="document"), 1, FeedbackPolicy()
    )
    rows = list(report_rows(log, decided, rules))
    expected = {None: "green", "document": "yellow", "scan": "red", "physical": "red"}
    assert all(
        decision["lane"] == expected[kind] for _, decision, kind, _ in rows if decision["lane"] != "blue"
    )
    lanes = {decision["lane"] for _, decision, _, _ in rows}
    assert {"green", "yellow", "red"} <= lanes


def test_a_replayed_day_is_decided_as_the_live_engine_decides_each_declaration(kcs):
    """One batch decider: replay's batch decisions over the log's first day (every importer's standing
    still fresh) equal the live Selector's, declaration by declaration, given the same draws. Rule
    sampling under 1 and a random share make every draw count."""
    from engine.batch import seeded_draws
    from engine.declarations import Declaration, Enterprise
    from engine.integrity import FeedbackPolicy
    from engine.selection import Selector
    from replay.evaluate import decide

    _, log = kcs
    log = log[log["declared_at"].dt.normalize() == log["declared_at"].iloc[0].normalize()].reset_index(
        drop=True
    )
    rules = RuleSet.load(ROOT / "scenarios" / "rules" / "kcs_derived.yaml")
    policy = SelectionPolicy(random_ratio=0.2, rule_sampling={r.id: 0.5 for r in rules.rules})
    batch = decide(log, rules, policy, 7, FeedbackPolicy())
    draws, row = seeded_draws(7, len(log)), {i: k for k, i in enumerate(log["id"])}
    sampling = {
        r.id: stream_generator(7, "rule_sampling", k).random(len(log)) for k, r in enumerate(rules.rules)
    }

    class SameDraws:  # the batch's arrays, read the live way (by declaration id and purpose)
        verifiable = False

        def uniform(self, declaration_id: str, purpose: str) -> float:
            if purpose == "rule_sampling":
                declaration, rule_id = declaration_id.split("/")
                return float(sampling[rule_id][row[declaration]])
            return float(draws[purpose][row[declaration_id]])

    selector = Selector(rules, policy, SameDraws())
    fields = [f for f in Declaration.model_fields if f in log.columns]
    chosen = {"random": 0, "targeted": 0}
    for k, record in enumerate(log[fields].to_dict("records")):
        live = selector.decide(Declaration(**record), Enterprise(id=record["enterprise_id"]))
        assert live.rules == [rules.rules[j].id for j in np.flatnonzero(batch["hits"][k])], k
        assert (live.channel in ("random", "both")) == bool(batch["random"][k]), k
        assert (live.channel in ("targeted", "both")) == bool(batch["targeted"][k]), k
        assert live.lane == LANES[batch["lane"][k]], k
        chosen["random"] += bool(batch["random"][k])
        chosen["targeted"] += bool(batch["targeted"][k])
    assert len(log) > 50 and chosen["random"] > 5 and chosen["targeted"] > 5, (len(log), chosen)
