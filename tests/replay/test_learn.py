"""The learned risk score: it never sees an outcome of its own day or later, a changed or mismatched
model file is refused, and on a log where risk follows the goods and the importer's record it finds
more than random at the same budget, on declarations it has never seen."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from doublerandom.cli import app
from engine import imported
from engine.errors import InputError
from replay import learn


def synthetic_log(n: int = 9000, seed: int = 3) -> pd.DataFrame:
    """A year of inspected declarations: chapter 61 and importers with a bad record violate far more
    often; values and masses are drawn afresh, so no row is a copy of another."""
    rng = np.random.default_rng(seed)
    firms = rng.integers(0, 400, n)
    bad_firm = rng.random(400) < 0.1
    chapter = rng.choice(["61", "84", "85", "03", "94"], n)
    hs = [c + f"{rng.integers(0, 9999):04d}" for c in chapter]
    p = 0.05 + 0.35 * (chapter == "61") + 0.3 * bad_firm[firms]
    day = np.sort(rng.integers(0, 365, n))
    return pd.DataFrame(
        {
            "id": [f"S{k:06d}" for k in range(n)],
            "declared_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(day, unit="D"),
            "enterprise_id": [f"F{f:04d}" for f in firms],
            "hs_code": hs,
            "origin_country": rng.choice(["CN", "VN", "DE", "US"], n),
            "departure_country": rng.choice(["CN", "VN", "DE", "US"], n),
            "trade_mode": "general",
            "transport_mode": rng.choice(["sea", "air", "road"], n),
            "customs_office": rng.choice(["OFF-1", "OFF-2"], n),
            "declared_value": rng.lognormal(9, 1, n),
            "net_mass_kg": rng.lognormal(5, 1, n),
            "quantity": 1.0,
            "violation": rng.random(n) < p,
            "critical": False,
            "category": None,
            "revenue": 0.0,
            "inspected": True,
            "inclusion_probability": np.nan,
        }
    )


def test_no_feature_sees_an_outcome_of_its_own_day_or_later():
    """Planted: one importer's declarations all become violations from a given day. The features of
    every declaration up to and including that day are unchanged; the next day's record shows it."""
    log = synthetic_log(3000)
    firm = log["enterprise_id"].value_counts().index[0]
    mine = log.index[log["enterprise_id"] == firm]
    cut = log.loc[mine[len(mine) // 2], "declared_at"]
    planted = log.copy()
    planted.loc[mine[log.loc[mine, "declared_at"] >= cut], "violation"] = True
    before, after = learn.firm_record(log), learn.firm_record(planted)
    upto = mine[log.loc[mine, "declared_at"] <= cut]
    later = mine[log.loc[mine, "declared_at"] > cut]
    pd.testing.assert_frame_equal(before.loc[upto], after.loc[upto])
    assert len(later) and (after.loc[later, "firm_violations"] > before.loc[later, "firm_violations"]).all()
    first = log.groupby("enterprise_id").head(1).index
    assert (before.loc[first, "firm_declarations"] == 0).all()  # nothing known of a firm's first day


@pytest.fixture(scope="module")
def trained():
    log = synthetic_log()
    return log, learn.train(log, dt.date(2025, 8, 1), dt.date(2025, 10, 1))


def test_the_model_finds_more_than_random_at_the_same_budget(trained):
    """On the last quarter (after training and validation), the top 5% by the model's score violate
    more often than the quarter's rate, the whole 95% interval above it; the goods code carries it."""
    log, model = trained
    test = log[log["declared_at"] >= "2025-10-01"]
    y = test["violation"].to_numpy(bool)
    at5 = learn.precision_at(model.score(log, log["declared_at"] >= "2025-10-01"), y)["0.05"]
    assert at5["selected"] > 80 and at5["precision_low"] > y.mean() + 0.1, (at5, y.mean())
    later = (log["declared_at"] >= "2025-10-01").to_numpy()
    assert not learn.seen_in_training(log, dt.date(2025, 8, 1))[later].any()  # all of it new to the model
    names = [name for name, _ in learn.importance(model, top=3)]
    assert {"hs_chapter", "hs_heading", "hs_code", "firm_violation_share", "firm_violations"} & set(names)


def test_a_score_does_not_depend_on_where_the_log_begins(trained):
    """The last quarter scored from the whole year, and from a log cut 183 days before it (the
    record's window, and a day more), gives the same scores: the record counts the 180 days before
    each declaration, not the firm's life since the log began. Scored from the quarter alone, the
    importers' records would be lost (the slicing the model report and validation once did)."""
    log, model = trained
    quarter = log["declared_at"] >= "2025-10-01"
    whole = model.score(log, quarter)
    cut = log[log["declared_at"] >= pd.Timestamp("2025-10-01") - pd.Timedelta(days=183)]
    assert np.array_equal(model.score(cut, cut["declared_at"] >= "2025-10-01"), whole)
    assert not np.allclose(model.score(log[quarter]), whole)  # a slice alone loses the record


def test_a_changed_or_mismatched_model_file_is_refused(trained, tmp_path):
    _, model = trained
    path = tmp_path / "m.json"
    model.save(path)
    assert learn.load(path).meta["features"] == learn.FEATURES
    body = json.loads(path.read_text())

    def write(changed: dict, refit: bool) -> None:
        if refit:
            changed["fingerprint"] = learn.fingerprint(changed)
        path.write_text(json.dumps(changed))

    for change, refit, says in (
        ({"trained_until": "2030-01-01"}, False, "fingerprint"),
        ({"features": learn.FEATURES[:-1]}, True, "features"),
        ({"library_version": "0.0.1"}, True, "LightGBM 0.0.1"),
    ):
        write({**body, **change}, refit)
        with pytest.raises(InputError, match=says):
            learn.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a readable model file"):
        learn.load(path)


def test_the_commands_train_and_compare_with_random(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    synthetic_log().to_parquet(folder / imported.DECLARATIONS, index=False)
    runner = CliRunner()
    model = tmp_path / "model.json"
    made = runner.invoke(
        app,
        [
            "model",
            "train",
            str(folder),
            "--until",
            "2025-08-01",
            "--valid-until",
            "2025-10-01",
            "--out",
            str(model),
        ],
    )
    assert made.exit_code == 0 and model.exists(), made.output
    shown = runner.invoke(
        app, ["model", "evaluate", str(folder), "--model", str(model), "--from", "2025-10-01"]
    )
    assert shown.exit_code == 0, shown.output
    assert "are no copy of a training row" in shown.stdout and "random" in shown.stdout
    drawn = tmp_path / "report.png"
    monthly = runner.invoke(
        app,
        ["model", "report", str(folder), "--model", str(model), "--from", "2025-10-01", "--plot", str(drawn)],
    )
    assert monthly.exit_code == 0 and "2025-12" in monthly.stdout and "score PSI" in monthly.stdout, (
        monthly.output
    )
    assert "calibration" in monthly.stdout and "bin 10" in monthly.stdout and drawn.stat().st_size > 10_000
    bad = runner.invoke(
        app, ["model", "train", str(folder), "--until", "2025-13-01", "--valid-until", "x", "--out", "m"]
    )
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output and "Traceback" not in bad.output


def test_inverse_probability_weights_recover_the_population_rate():
    """A log of what a targeted policy inspected: chapter 61 (violating at 40%) inspected at 90%, the
    rest (5%) at 2% by the random channel, each with its inclusion probability. Unweighted, the model
    learns the inspected mix and overstates the population's rate several-fold; weighted by the
    inverse probabilities its mean score over the whole population is the true rate."""
    rng = np.random.default_rng(9)
    log = synthetic_log(40000, seed=9)
    chapter61 = log["hs_code"].str[:2].eq("61").to_numpy()
    truth = np.where(chapter61, 0.40, 0.05)
    log["violation"] = (rng.random(len(log)) < truth).astype(object)
    p = np.where(chapter61, 0.9, 0.02)
    log["inspected"] = rng.random(len(log)) < p
    log["inclusion_probability"] = p
    log.loc[~log["inspected"], "violation"] = None
    weighted = learn.train(log, dt.date(2025, 8, 1), dt.date(2025, 10, 1))
    log_plain = log.assign(inclusion_probability=np.nan)
    plain = learn.train(log_plain, dt.date(2025, 8, 1), dt.date(2025, 10, 1))
    everyone = log[log["declared_at"] >= "2025-10-01"]
    true_rate = float(truth[(log["declared_at"] >= "2025-10-01").to_numpy()].mean())
    inspected = everyone[everyone["inspected"]]
    assert weighted.meta["weighted"] and not plain.meta["weighted"]
    assert abs(weighted.score(everyone).mean() - true_rate) < 0.02, (
        weighted.score(everyone).mean(),
        true_rate,
    )
    assert plain.score(everyone).mean() > true_rate + 0.05  # the inspected mix, not the population
    assert inspected["violation"].astype(float).mean() > 2 * true_rate


def test_the_monthly_report_flags_drift_in_the_inputs_and_in_the_finds():
    """From November the goods mix shifts towards chapter 61 and chapter 61 stops violating while
    chapter 84 starts: the score's population stability index rises over 0.1 and the model's precision
    at 5% falls wholly under its validation interval, flagged; the quarter before is not flagged."""
    rng = np.random.default_rng(21)
    log = synthetic_log(16000, seed=21)
    late = (log["declared_at"] >= "2025-11-01").to_numpy()
    chapter = np.where(late & (rng.random(len(log)) < 0.6), "61", log["hs_code"].str[:2].to_numpy())
    log["hs_code"] = [c + code[2:] for c, code in zip(chapter, log["hs_code"])]
    p = np.where(chapter == "61", 0.40, 0.05)
    p = np.where(late, np.where(chapter == "61", 0.02, np.where(chapter == "84", 0.45, 0.05)), p)
    log["violation"] = rng.random(len(log)) < p
    model = learn.train(log, dt.date(2025, 8, 1), dt.date(2025, 10, 1))
    months = learn.monthly_report(model, log, dt.date(2025, 10, 1)).set_index("month")
    assert not months.loc["2025-10", "below_validation"] and months.loc["2025-10", "score_psi"] < 0.1
    for month in ("2025-11", "2025-12"):
        assert months.loc[month, "below_validation"] and months.loc[month, "score_psi"] > 0.1, months
        # the input that moved is named: the goods mix (chapter 61's share rose from a fifth to two thirds)
        assert months.loc[month, "top_input"] in ("hs_chapter", "hs_heading", "hs_code"), months
    assert months.loc["2025-10", "top_input_psi"] < months.loc["2025-11", "top_input_psi"]


def test_the_calibration_curve_holds_a_calibrated_score_and_shows_an_overconfident_one():
    """Scores that are the true chances: each bin's observed rate covers its mean score (95%
    intervals: three or more of ten miss by chance with probability 0.012). The same scores doubled: the
    upper bins' intervals lie wholly under their mean score."""
    rng = np.random.default_rng(4)
    p = rng.beta(1, 8, 20000)
    y = rng.random(len(p)) < p
    curve = learn.calibration(p, y)
    inside = (curve["rate_low"] <= curve["mean_score"]) & (curve["mean_score"] <= curve["rate_high"])
    assert len(curve) == 10 and inside.sum() >= 8, curve
    doubled = learn.calibration(np.minimum(1, 2 * p), y)
    assert (doubled["rate_high"] < doubled["mean_score"]).tail(5).all(), doubled


def test_an_explanation_names_what_pushed_the_score_and_adds_up_to_it(trained):
    """For a high-scoring chapter-61 declaration of a bad importer, the reasons are the goods and the
    importer's record; the contributions with the bias add up to the score's log-odds."""
    log, model = trained
    x = learn.features(log)
    scores = model.predict(x)
    k = int(np.argmax(np.where(log["hs_code"].str[:2] == "61", scores, -1)))
    reasons = model.explain(x.iloc[[k]], top=3)[0]
    assert len(reasons) == 3 and {name for name, _ in reasons} & {"hs_chapter", "hs_heading", "hs_code"}
    assert reasons[0][1] > 0 and abs(reasons[0][1]) >= abs(reasons[-1][1])
    whole = model.booster.predict(
        learn._frame(x.iloc[[k]], model.meta["levels"]),
        num_iteration=model.meta["iterations"],
        pred_contrib=True,
    )[0]
    assert abs(whole.sum() - np.log(scores[k] / (1 - scores[k]))) < 1e-6


def test_one_live_declaration_scores_as_the_batch_does_to_the_last_bit(trained, tmp_path):
    """The live office builds one declaration's inputs (engine.score) from its fields and the
    importer's record; the batch builds a whole log's (replay.learn). For the last 400 declarations
    of the log, given the batch's record, every input and the probability are the same bits."""
    from engine.declarations import parse_declaration
    from engine.score import FIRM, LearnedScore, inputs

    log, model = trained
    path = tmp_path / "m.json"
    model.save(path)
    live = LearnedScore.load(path)
    x = learn.features(log)
    batch = model.predict(x)
    fields = ["id", "enterprise_id", "hs_code", "origin_country", "departure_country", "trade_mode"]
    fields += ["transport_mode", "customs_office", "declared_value", "net_mass_kg", "quantity"]
    unseen = 0
    for k in range(len(log) - 400, len(log)):
        row = log.iloc[k]
        raw = {f: row[f].item() if hasattr(row[f], "item") else row[f] for f in fields}
        declaration = parse_declaration({**raw, "declared_at": row["declared_at"].isoformat()}, "row")
        values = inputs(declaration, {name: x.iloc[k][name] for name in FIRM})
        assert values == x.iloc[k].to_dict(), k
        assert live.probability(values) == batch[k], k
        unseen += values["hs_code"] not in model.meta["levels"]["hs_code"]
    assert unseen > 0  # some six-digit codes were never seen in training: missing, in both alike
    calibrated = learn.train(log, dt.date(2025, 8, 1), dt.date(2025, 10, 1), calibrate=True)
    calibrated.save(tmp_path / "c.json")
    live_c, batch_c = LearnedScore.load(tmp_path / "c.json"), calibrated.predict(x)
    for k in range(len(log) - 100, len(log)):  # the recalibration too: the same bits live and in a batch
        row = x.iloc[k].to_dict()
        assert live_c.probability(row) == batch_c[k] != batch[k], k
    top = live.reasons(values)
    assert [name for name, _ in top] == [name for name, _ in model.explain(x.iloc[[len(log) - 1]])[0]]


def test_the_probability_is_recalibrated_on_the_validation_period_keeping_the_ranking(trained):
    """Platt's map, fitted on the validation period: there the calibrated probabilities' mean is the
    violation rate (the logistic intercept's score equation, so to rounding), and no two declarations
    swap places."""
    from scipy import stats

    log, plain = trained
    model = learn.train(log, dt.date(2025, 8, 1), dt.date(2025, 10, 1), calibrate=True)
    assert model.meta["calibration"]["slope"] > 0 and "calibration" not in plain.meta
    x = learn.features(log)
    day = log["declared_at"].dt.date
    valid = (day >= dt.date(2025, 8, 1)) & (day < dt.date(2025, 10, 1))
    calibrated = model.predict(x[valid])
    assert calibrated.mean() == pytest.approx(log.loc[valid, "violation"].mean(), abs=1e-9)
    raw = learn.Model(model.booster, {**model.meta, "calibration": None}).predict(x[valid])
    np.testing.assert_array_equal(raw, plain.predict(x[valid]))  # the same trees underneath
    assert not np.allclose(raw, calibrated)  # it did move them
    assert stats.spearmanr(raw, calibrated).statistic == pytest.approx(1.0, abs=1e-12)
