"""Derive the simulation's baseline risk rules from the training split of the Korean data (MIT, IBS/KCS).

Writes scenarios/rules/kcs_derived.yaml, and scenarios/rules/kcs_goods.yaml: targeting that leans
on what a declaration lodges, which firms can see and route around (the frontier's "where randomness
pays"): the derived goods and origin rules, no enterprise rule, and ELEVATED-RISK-HEADING, a broader
net that lets goods alone fill an office's capacity (the six-digit list holds 2.1% of the simulated
goods lines, and the certified traders' multipliers thin it: alone it left the baseline port's
inspectors at utilization 0.5-0.6 where the capacity gives 0.7; with the headings, 6.0%).
How each threshold is chosen (stated again in the file):
- HIGH-RISK-GOODS: six-digit HS codes with at least 10 training rows whose shrunk fraud rate (the
  fitted intercept, the code's chapter, heading and hs6 effects from scenarios/risk/kcs_effects.csv,
  the other effects at their training mean) is at least a multiple of the training split's rate. The
  10 rows keep codes seen a handful of times off the list; the multiple is the smallest of
  1.6/1.8/2.0/2.5/3.0 whose listed codes keep a validation-split (2021 Q1) fraud rate at least 2.5x
  that split's rate (a targeted channel must beat random several-fold, as CORE's 14% against
  2%; a list that merely doubles the rate does not), so the list is chosen on data it was not fitted on.
- HIGH-RISK-ORIGIN: origins with at least 30 training rows, the same test; left out when no multiple
  passes it.
- ELEVATED-RISK-HEADING (kcs_goods.yaml only): four-digit headings with at least 30 training rows
  whose shrunk rate (chapter and heading effects) is at least a multiple of the split's rate, the
  smallest of 1.2/1.3/1.5/1.6/1.8/2.0 whose headings keep a validation rate at least 1.5x the split's
  (a broad net must still beat random by half); weighted by its validation lift as the others.
- The value band is not used: its fitted effects are within +-0.25 log-odds (the noise the data set's
  makers added to prices hides most undervaluation), too weak for a rule.
- Weights (the risk score, used when a policy sets an expected rate): a derived rule weighs its
  validation-split lift (fraud rate over the split's); HIGH-RISK-ENTERPRISE weighs 3 (a confirmed
  problem within the flag's 180 days, the credit measures' strongest signal: above the goods list,
  so a flagged firm's declarations come first), NEW-ENTERPRISE 1 (nothing is known yet): judgements,
  stated, not fits to pass the checks. At 2 (reached only through the goods list) the baseline meets
  every target and the steady state pooled over seeds 1-5 too: hit ratio 3.7 [3.5, 3.8] against
  5.0, drawn share 52.3%, the dishonest firms' change -3.8 [-26.9, +19.3] within +-46.3 (`doublerandom
  check scenarios/baseline.yaml --seeds 5 --set rules=FILE`, FILE this one at weight 2). It was once
  raised to 3 because one seed's 24 months could not show that series level; five seeds can.
The enterprise rules (new, high-risk) come from the feedback policy, not from the data. No rule reads
the dishonest class: the policy's credit floor inspects those firms (the `credit` channel), and a rule
would only move them into the targeted channel.
Run from the repository root:  python tools/derive_rules.py ../shared/data/customs-declaration-datasets
"""

import math
import sys
from pathlib import Path

import yaml
from fit_risk import split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.files import QuotedCodes  # noqa: E402
from simulation.risk import RiskTable, expit  # noqa: E402

MIN_ROWS, MIN_ORIGIN_ROWS, MIN_HEADING_ROWS = 10, 30, 30
MULTIPLES = [1.6, 1.8, 2.0, 2.5, 3.0]
HEADING_MULTIPLES, HEADING_LIFT = [1.2, 1.3, 1.5, 1.6, 1.8, 2.0], 1.5  # the goods-only file's broad net
VALIDATION_LIFT = (
    2.5  # a list is kept only if its codes' validation fraud rate is at least this x the split's
)
OUT = Path("scenarios/rules/kcs_derived.yaml")
GOODS_OUT = Path("scenarios/rules/kcs_goods.yaml")

STATUS_RULES = [
    {
        "id": "NEW-ENTERPRISE",
        "description": "The first declaration ever lodged by this enterprise.",
        "inspection": "document",
        "sampling_rate": 0.5,
        "weight": 1.0,
        "when": {"field": "enterprise.declarations", "eq": 0},
    },
    {
        "id": "HIGH-RISK-ENTERPRISE",
        "description": "The enterprise had a confirmed problem recently and is a high-risk target.",
        "inspection": "physical",
        "sampling_rate": 0.3,
        "weight": 3.0,
        "when": {"field": "enterprise.high_risk", "eq": True},
    },
]


def listed(
    table: RiskTable, train, levels: list[str], column: str, min_rows: int, threshold: float
) -> list[str]:
    """Codes seen at least min_rows times whose shrunk rate passes: the fitted intercept, the code's own
    effects along `levels`, and the training rows' mean of every other effect."""
    features = table.features(train)
    part = sum(features[level].map(table.effects(level)).fillna(0.0) for level in levels)
    others = float((table.logodds(train) - part).mean())
    support = train[column].value_counts()
    rate = expit(table.intercept + others + part.groupby(train[column]).first())
    return sorted(code for code, rows in support.items() if rows >= min_rows and rate[code] >= threshold)


def main(data_dir: str) -> None:
    table = RiskTable.read("scenarios/risk/kcs_effects.csv")
    train, y_train = split(data_dir, "train")
    valid, y_valid = split(data_dir, "valid")
    base = float(y_train.mean())

    for split_rows in (train, valid):  # the heading a rule reads (`hs_heading`)
        split_rows["hs_heading"] = split_rows["hs_code"].astype(str).str.zfill(6).str[:4]

    def chosen(
        levels, column, min_rows, multiples=MULTIPLES, needed=VALIDATION_LIFT
    ) -> tuple[float, list[str]]:
        """The smallest multiple whose list holds up on the validation split (none: an empty list)."""
        for multiple in multiples:
            codes = listed(table, train, levels, column, min_rows, multiple * base)
            held = valid[column].isin(codes).to_numpy()
            if held.any() and y_valid[held].mean() >= needed * y_valid.mean():
                return multiple, codes
        return math.nan, []

    goods_multiple, goods = chosen(["chapter", "heading", "hs6"], "hs_code", MIN_ROWS)
    origin_multiple, origins = chosen(["origin"], "origin_country", MIN_ORIGIN_ROWS)
    heading_multiple, headings = chosen(
        ["chapter", "heading"], "hs_heading", MIN_HEADING_ROWS, HEADING_MULTIPLES, HEADING_LIFT
    )

    def lift(column, codes) -> float:
        """The rule's risk-score weight: its validation fraud rate over the split's."""
        return round(float(y_valid[valid[column].isin(codes).to_numpy()].mean() / y_valid.mean()), 1)

    def figures(column, codes) -> str:
        t, v = train[column].isin(codes).to_numpy(), valid[column].isin(codes).to_numpy()
        return (
            f"training 2020: {t.sum()} rows, fraud {y_train[t].mean():.1%} (all rows {base:.1%}); "
            f"validation 2021 Q1: {v.sum()} rows, fraud {y_valid[v].mean():.1%} (all rows "
            f"{y_valid.mean():.1%})"
        )

    def list_rule(
        rule_id: str, what: str, multiple: float, min_rows: int, column: str, codes, list_name: str
    ) -> dict:
        return {
            "id": rule_id,
            "description": f"{what} whose shrunk fraud rate is at least {multiple:g}x the average "
            f"(>= {min_rows} training rows). {figures(column, codes)}.",
            "inspection": "physical",
            "weight": lift(column, codes),
            "when": {"field": column, "in": {"list": list_name}},
        }

    derived = []
    if goods:
        derived.append(
            list_rule(
                "HIGH-RISK-GOODS", "HS6 codes", goods_multiple, MIN_ROWS, "hs_code", goods, "high_risk_hs6"
            )
        )
    if origins:
        derived.append(
            list_rule(
                "HIGH-RISK-ORIGIN",
                "Origins",
                origin_multiple,
                MIN_ORIGIN_ROWS,
                "origin_country",
                origins,
                "high_risk_origins",
            )
        )
    lists = {
        name: codes for name, codes in (("high_risk_hs6", goods), ("high_risk_origins", origins)) if codes
    }
    write(OUT, {"version": "kcs-derived-2026.11", "lists": lists, "rules": [*derived, *STATUS_RULES]})
    broad = list_rule(
        "ELEVATED-RISK-HEADING",
        "HS headings",
        heading_multiple,
        MIN_HEADING_ROWS,
        "hs_heading",
        headings,
        "elevated_risk_headings",
    )
    write(
        GOODS_OUT,
        {
            "version": "kcs-goods-2026.12",
            "lists": {**lists, "elevated_risk_headings": headings},
            "rules": [*derived, broad],
        },
    )
    print(
        f"{OUT}, {GOODS_OUT}: {len(goods)} HS6 codes (x{goods_multiple:g}), "
        f"{len(origins)} origins (x{origin_multiple:g}), {len(headings)} headings (x{heading_multiple:g})"
    )


def write(path: Path, rules: dict) -> None:
    header = "".join(f"# {line}\n" for line in (__doc__ or "").strip().splitlines())
    path.write_text(
        "# Generated by tools/derive_rules.py; edit the script, not this file.\n"
        + header
        + yaml.dump(rules, Dumper=QuotedCodes, sort_keys=False, width=110)
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/customs-declaration-datasets")
