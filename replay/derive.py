"""Drafting risk rules from an imported log, for an analyst to review: the groups of the training
period's declarations (six-digit HS codes, HS headings, origins, heading x origin pairs) with at
least `min_support` rows and a violation rate of at least `min_rate`, each rule's description giving
its training support, rate and 95% interval against the period's rate, and its weight the lift
(rate over the period's rate). Value bands are not drafted: declared prices in the Korean data carry
noise its makers added, and its fitted value effects stayed within +-0.25 log-odds (tools/fit_risk.py).
Evaluating the draft on the later period is one command: `doublerandom evaluate DIR --rules DRAFT
--from DATE`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import yaml

from engine.files import QuotedCodes
from engine.report import wilson

PAIRS_AT_MOST = 25  # heading x origin rules: one rule each, so only the strongest few


def groups(train: pd.DataFrame, key: pd.Series, min_support: int, min_rate: float) -> pd.DataFrame:
    """Per value of `key`: rows, violations, rate; those meeting the thresholds, strongest first."""
    table = train.groupby(key)["violation"].agg(rows="size", found="sum")
    table["rate"] = table["found"] / table["rows"]
    return table[(table["rows"] >= min_support) & (table["rate"] >= min_rate)].sort_values(
        "rate", ascending=False
    )


def draft(log: pd.DataFrame, train_until: dt.date, min_support: int, min_rate: float) -> dict:
    train = log[log["declared_at"].dt.date <= train_until]
    train = train[train["violation"].notna()]
    base = float(train["violation"].mean())
    period = f"{train['declared_at'].min():%Y-%m-%d} to {train_until}"

    def describe(what: str, t: pd.DataFrame) -> str:
        rows, found = int(t["rows"].sum()), int(t["found"].sum())
        low, high = wilson(found / rows, rows)
        return (
            f"{what}: training {period}, {rows} rows, {found / rows:.1%} violating [{low:.1%}, {high:.1%}] "
            f"against {base:.1%} for all {len(train)} rows (min support {min_support}, min rate "
            f"{min_rate:.0%})."
        )

    def weight(t: pd.DataFrame) -> float:
        return round(float(t["found"].sum() / t["rows"].sum() / base), 1)

    lists, rules = {}, []
    for name, field, key in (
        ("hs6", "hs_code", train["hs_code"]),
        ("heading", "hs_heading", train["hs_code"].str[:4]),
        ("origin", "origin_country", train["origin_country"]),
    ):
        t = groups(train, key, min_support, min_rate)
        if len(t):
            lists[f"draft_{name}"] = [str(v) for v in t.index]
            rules.append(
                {
                    "id": f"DRAFT-{name.upper()}",
                    "description": describe(f"{len(t)} {name} codes", t),
                    "inspection": "physical",
                    "weight": weight(t),
                    "when": {"field": field, "in": {"list": f"draft_{name}"}},
                }
            )
    pairs = groups(train, train["hs_code"].str[:4] + "|" + train["origin_country"], min_support, min_rate)
    for value, _ in pairs.head(PAIRS_AT_MOST).iterrows():
        heading, origin = value.split("|")
        t = pairs.loc[[value]]
        rules.append(
            {
                "id": f"DRAFT-{heading}-{origin}",
                "description": describe(f"heading {heading} from {origin}", t),
                "inspection": "physical",
                "weight": weight(t),
                "when": {
                    "all": [{"field": "hs_heading", "eq": heading}, {"field": "origin_country", "eq": origin}]
                },
            }
        )
    return {"version": f"draft-{train_until}", "lists": lists, "rules": rules}


def to_yaml(rules: dict) -> str:
    return (
        "# Drafted by `doublerandom rules derive` for an analyst to review; each description says what the\n"
        "# rule rests on. Evaluate it on a later period before using it.\n"
        + yaml.dump(rules, Dumper=QuotedCodes, sort_keys=False, width=110)
    )
