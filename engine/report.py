"""The live office's monthly report: from its store, the monthly figures the simulation writes, where
they apply. The figures both can compute are defined here once, name, unit, definition and
computation together (FIGURES, `channel_figures`), and computed by the same function from the live
store's counts and from a simulated month's events (simulation/metrics.py).

Per month of lodging: declarations; selections by channel (random = the pure random draw alone or
with a rule, as the simulation counts it; targeted; credit floor; instruction = a risk officer's
order on a declaration the computer did not select); inspections; the computer-selection share (the
computer's share of inspections: China Customs' "55%") and the pure random share; hit rates per
channel over finished inspections, with Wilson 95% intervals; declarations per lane; and per rule:
how often it fired, how many of those were inspected and found a problem, with the hit rate's interval.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from engine.selection import INSPECTION_TYPES, LANES, lanes

Z95 = 1.959963984540054
CHANNELS = ("random", "targeted", "credit", "instructed")
RANDOM_CHANNELS = ("random", "both")  # picked by the pure random draw, alone or with a rule


@dataclass(frozen=True)
class Figure:
    """A monthly figure (or figures defined together): its names, unit and definition, stated once;
    the README's "Monthly metrics" table is written from these."""

    names: tuple[str, ...]
    unit: str
    definition: str


# The monthly figures live and simulated alike, in column order: `channel_figures` computes them all
# from a month's counts, for the live report and for monthly.csv.
FIGURES = [
    Figure(("declarations",), "count", "declarations lodged (simulated: arrived) in the month"),
    Figure(
        ("selected",),
        "count",
        "selected by the computer: `random_selected + targeted_selected + credit_selected`",
    ),
    Figure(("random_selected",), "count", "picked by the random draw (channel `random` or `both`)"),
    Figure(("targeted_selected",), "count", "picked by a rule only (channel `targeted`)"),
    Figure(("credit_selected",), "count", "selected by a credit floor alone (channel `credit`)"),
    Figure(("instructed_selected",), "count", "ordered by intelligence, not selected by the computer"),
    Figure(("inspections",), "count", "all inspected: `selected + instructed_selected`"),
    Figure(
        ("random_dispatch_share",),
        "share",
        "computer selection (rules + random draw + credit floor) / all inspections: the drawn share plus "
        "the scored share",
    ),
    Figure(("pure_random_share",), "share", "`random_selected / inspections`"),
    Figure(
        ("credit_share",),
        "share",
        "`credit_selected / inspections`: the credit floor for dishonest firms alone",
    ),
    Figure(("inspection_rate",), "share", "`inspections / declarations`"),
    Figure(
        ("scored_selected",),
        "count",
        "of `targeted_selected`, those no draw chose: the highest risk scores under an expected rate (a "
        "draw only at the cutoff's ties) or a rule that inspects every hit (its sampling rate, times the "
        "credit multiplier, is 1)",
    ),
    Figure(
        ("drawn_share", "scored_share"),
        "share",
        "of all inspections, those the computer chose by a random draw (the random channel, the credit "
        "floor, rules' sampling rates under 1) and those it chose without one (ranked risk scores, rules "
        "that inspect every hit): together the "
        'computer-selection share, told apart (China\'s 55% "from random selection" is the drawn share)',
    ),
    Figure(tuple(f"finished_{c}" for c in CHANNELS), "count", "inspections of the channel with a result"),
    Figure(tuple(f"hits_{c}" for c in CHANNELS), "count", "violations found per channel"),
    Figure(
        tuple(f"hit_rate_{c}{end}" for c in CHANNELS for end in ("", "_low", "_high")),
        "share",
        "hits / finished inspections of the channel, with its 95% Wilson interval (the random channel "
        "samples each credit class at ratio x multiplier, so its raw hit rate is not quite the "
        "population rate: see the stratified estimate)",
    ),
    Figure(
        tuple(f"lane_{lane}" for lane in LANES),
        "count",
        "declarations per lane: red (physical or scan inspection), yellow (documents only), blue (released, "
        "referred to post-clearance audit: a certified firm some rule flagged), green (released)",
    ),
]
FIGURE_NAMES = [name for figure in FIGURES for name in figure.names]


SHARES = ("random_dispatch_share", "pure_random_share", "credit_share")  # the three, always shown together


def shares(selected: Mapping[str, int]) -> tuple[float, float, float]:
    """Of all inspections (`selected`: inspections per channel of CHANNELS): the computer-selection
    share (rules, random draw and credit floor: all but the officers' orders; China's "55%" is only its
    drawn part, see channel_figures), the
    pure random share and the credit share (the floor)."""
    inspections = sum(selected.values())
    return (
        _share(inspections - selected["instructed"], inspections),
        _share(selected["random"], inspections),
        _share(selected["credit"], inspections),
    )


def channel_figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """Every figure of FIGURES from a month's counts: `declarations`, and per channel of CHANNELS
    `{c}_selected`, `finished_{c}` and `hits_{c}`, `scored_selected`, and per lane `lane_{l}`."""
    selected = {c: int(counts[f"{c}_selected"]) for c in CHANNELS}
    inspections = sum(selected.values())
    out: dict[str, Any] = {
        "declarations": int(counts["declarations"]),
        "selected": inspections - selected["instructed"],
        **{f"{c}_selected": selected[c] for c in CHANNELS},
        "inspections": inspections,
        **dict(zip(SHARES, shares(selected))),
        "inspection_rate": _share(inspections, int(counts["declarations"])),
        "scored_selected": int(counts["scored_selected"]),
        "drawn_share": _share(
            inspections - selected["instructed"] - int(counts["scored_selected"]), inspections
        ),
        "scored_share": _share(int(counts["scored_selected"]), inspections),
        **{f"finished_{c}": int(counts[f"finished_{c}"]) for c in CHANNELS},
        **{f"hits_{c}": int(counts[f"hits_{c}"]) for c in CHANNELS},
    }
    for c in CHANNELS:
        rate = proportion(out[f"hits_{c}"], out[f"finished_{c}"])
        out[f"hit_rate_{c}"], out[f"hit_rate_{c}_low"], out[f"hit_rate_{c}_high"] = rate
    out |= {f"lane_{lane}": int(counts[f"lane_{lane}"]) for lane in LANES}
    return out


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on (effective) sample size n."""
    if n <= 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def channel_of(decision: dict[str, Any], inspected: bool) -> str | None:
    """The report's channel of a declaration: None when nobody selected it."""
    if decision["selected"]:
        return "random" if decision["channel"] in RANDOM_CHANNELS else decision["channel"]
    return "instructed" if inspected else None


def lane_of(decision: dict[str, Any], inspection_type: str | None) -> str:
    """The decision's lane, or for an instructed declaration the lane of the inspection ordered."""
    if decision["selected"] or inspection_type is None:
        return decision.get("lane", "green")
    code = INSPECTION_TYPES.index(inspection_type)
    return LANES[int(lanes(np.array([code]), np.array([0.0]), np.array([0]))[0])]


def drawn_by_a_rule(decision: dict) -> bool:
    """A targeted decision rules' sampling draws made (every rule that selected it at a rate under 1),
    as `Choices.rule_drawn` says of a batch: not one ranked under an expected rate (a cutoff), nor one a
    rule inspecting whenever it fires selected too (rate 1: certain, not random)."""
    if decision.get("cutoff") is not None:
        return False
    draws, sampled = decision.get("rule_draws") or {}, decision.get("sampled_rules", [])
    return bool(sampled) and all(draws.get(rule, [0.0, 1.0])[1] < 1 for rule in sampled)


def monthly(
    rows: Iterable[tuple[str, str | dict, str | None, str | None]], rule_ids: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One dict per month from (declared_at, decision as JSON or a dict, inspection type, outcome)
    rows; `rule_ids` are listed in every month even where they never fired."""
    months: dict[str, dict[str, Any]] = defaultdict(_empty)
    rule_ids = list(rule_ids)
    for declared_at, text, inspection_type, outcome in rows:
        m = months[declared_at[:7]]
        for rule in rule_ids:
            m["rules"].setdefault(rule, _rule_counts())
        _count(m, json.loads(text) if isinstance(text, str) else text, inspection_type, outcome)
    return [_figures(month, months[month]) for month in sorted(months)]


def _count(
    m: dict[str, Any], decision: dict, inspection_type: str | None, outcome: str | None, sign: int = 1
) -> None:
    """One declaration's part in its month's counts: added, or taken away (sign -1) when its
    inspection changed since it was counted (the one definition for `monthly` and `Tally`)."""
    channel = channel_of(decision, inspection_type is not None)
    m["declarations"] += sign
    m[f"lane_{lane_of(decision, inspection_type)}"] += sign
    if channel is not None:
        m[f"{channel}_selected"] += sign
        m["scored_selected"] += sign * (channel == "targeted" and not drawn_by_a_rule(decision))
        if outcome is not None:
            m[f"finished_{channel}"] += sign
            m[f"hits_{channel}"] += sign * (outcome == "problem")
    fired = len(decision["rules"])
    for rule in decision["rules"]:
        r = m["rules"].setdefault(rule, _rule_counts())
        r["fired"] += sign
        r["inspected"] += sign * (inspection_type is not None)
        r["finished"] += sign * (outcome is not None)
        r["found"] += sign * (outcome == "problem")
        # a find is credited in equal parts to the rules that fired on it, so the credits add up; kept
        # as counts per number of rules fired, so a find taken away leaves no rounding behind
        r["credited"][fired] = r["credited"].get(fired, 0) + sign * (outcome == "problem")


class Tally:
    """The monthly report kept up to date instead of recomputed: each refresh counts the declarations
    decided since the last one, and recounts the few whose inspection changed since they were counted
    (an officer's order on a declaration the computer left, a result). A declaration's decision never
    changes; its inspection is created once and gets its outcome once, so those are all the changes.
    What the dashboard and `GET /reports/monthly` serve (a test holds it equal to `monthly` over the
    whole store after every step of a random run)."""

    def __init__(self) -> None:
        self.months: dict[str, dict[str, Any]] = defaultdict(_empty)
        self.last = 0  # the store's order (rowid) of the last declaration counted
        self.seen = 0  # the audit record up to which changes were looked at
        self.counted: dict[str, tuple[str, str | None]] = {}  # id -> (inspection type, outcome) as counted

    def update(self, store) -> list[dict[str, Any]]:
        """Count what changed since the last call; the months' figures."""
        self.count(store)
        return [_figures(month, self.months[month]) for month in sorted(self.months)]

    def count(self, store, limit: int | None = None) -> bool:
        """Count up to `limit` new declarations (all: None) and every change to those counted;
        whether it has caught up. A service counts a large store a slice at a time at start-up, so
        other reads go on between the slices."""
        head = store.audit.head()  # first: whatever the reads below see is at least this recent
        top = head[0] if head else 0
        if self.last == 0:  # the first count reads every declaration as it stands: no change to recount
            self.seen = top
        read = 0
        for order, id, declared_at, text, inspection_type, outcome in store.report_rows_after(
            self.last, limit
        ):
            _count(self.months[declared_at[:7]], json.loads(text), inspection_type, outcome)
            if inspection_type is not None:
                self.counted[id] = (inspection_type, outcome)
            self.last, read = order, read + 1
        for id in store.inspected_since(self.seen, top):  # the audit log names every change
            order, declared_at, text, inspection_type, outcome = store.counted_state(id)
            before = self.counted.get(id, (None, None))
            if order <= self.last and before != (inspection_type, outcome):  # later ones: counted next time
                decision, m = json.loads(text), self.months[declared_at[:7]]
                _count(m, decision, *before, sign=-1)
                _count(m, decision, inspection_type, outcome)
                self.counted[id] = (inspection_type, outcome)
        self.seen = top
        return limit is None or read < limit


def _empty() -> dict[str, Any]:
    counts = {f"{k}_{c}": 0 for c in CHANNELS for k in ("finished", "hits")}
    return {
        "declarations": 0,
        **{f"{c}_selected": 0 for c in CHANNELS},
        "scored_selected": 0,
        **counts,
        **{f"lane_{lane}": 0 for lane in LANES},
        "rules": {},
    }


RULE_FIGURES = ("fired", "inspected", "finished", "found", "credited")  # a month's per rule, as reported


def _rule_counts() -> dict[str, Any]:
    return {"fired": 0, "inspected": 0, "finished": 0, "found": 0, "credited": {}}


LONG_COLUMNS = ("month", "channel", "figure", "value", "low", "high")


def long_rows(months: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The monthly figures in long format, one row per month x channel x figure with its 95% interval
    where it has one (Wilson, so no bound leaves 0..1): per channel of CHANNELS (credit included) its
    inspections, finished ones, finds, hit rate and share of all inspections; for channel `all` the
    declarations, inspections, inspection rate, the three shares and the lanes. The live report and
    the simulation's monthly.csv give the same rows (both hold every figure of FIGURES)."""
    rows: list[dict[str, Any]] = []

    def add(month: str, channel: str, figure: str, value: float, low=math.nan, high=math.nan) -> None:
        rows.append(dict(zip(LONG_COLUMNS, (month, channel, figure, value, low, high))))

    for m in months:
        month, inspections = str(m["month"]), int(m["inspections"])
        for c in CHANNELS:
            for figure, column in (
                ("selected", f"{c}_selected"),
                ("finished", f"finished_{c}"),
                ("hits", f"hits_{c}"),
            ):
                add(month, c, figure, int(m[column]))
            add(month, c, "hit_rate", m[f"hit_rate_{c}"], m[f"hit_rate_{c}_low"], m[f"hit_rate_{c}_high"])
            add(month, c, "share_of_inspections", *proportion(int(m[f"{c}_selected"]), inspections))
        add(month, "all", "declarations", int(m["declarations"]))
        add(month, "all", "inspections", inspections)
        add(month, "all", "inspection_rate", *proportion(inspections, int(m["declarations"])))
        computer = inspections - int(m["instructed_selected"])
        scored = int(m["scored_selected"])
        for name, k in zip(
            (*SHARES, "drawn_share", "scored_share"),
            (computer, int(m["random_selected"]), int(m["credit_selected"]), computer - scored, scored),
        ):
            add(month, "all", name, *proportion(k, inspections))
        for lane in LANES:
            add(month, "all", f"lane_{lane}", int(m[f"lane_{lane}"]))
    return rows


def _figures(month: str, m: dict[str, Any]) -> dict[str, Any]:
    out = {"month": month, **channel_figures(m)}
    out["rules"] = {
        rule: {
            **r,
            "credited": sum(k / fired for fired, k in sorted(r["credited"].items())),
            **dict(zip(("hit_rate", "low", "high"), proportion(r["found"], r["finished"]))),
        }
        for rule, r in sorted(m["rules"].items())
    }
    return out


def jsonable(value: Any) -> Any:
    """The report with each undefined figure (NaN: no inspections finished yet) as None, for JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def _share(k: int, n: int) -> float:
    return k / n if n else math.nan


def proportion(k: int, n: int) -> tuple[float, float, float]:
    """k / n with its 95% Wilson interval; all nan when n is 0."""
    return (k / n, *wilson(k / n, n)) if n else (math.nan, math.nan, math.nan)


def difference(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 with its 95% interval by Newcombe's hybrid score method (each proportion's Wilson
    interval combined), which stays within [-1, 1] and behaves at small counts; all nan when either
    side has no trials."""
    if not n1 or not n2:
        return (math.nan, math.nan, math.nan)
    (p1, l1, u1), (p2, l2, u2) = proportion(k1, n1), proportion(k2, n2)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def rule_summary(months: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rule over all months: fired, selected (inspected), found, hit rate with its interval, its
    difference from the random channel's hit rate with that difference's own interval (both rates
    are estimates), its credited share of all detections (a find several rules fired on is shared
    among them, so the shares add up to at most 100%), and flags a risk officer should look at: a
    rule that never fires, one that never finds, and one whose difference from random lies wholly
    below zero (GAO's point that targeting without measured hit rates may do no better than chance)."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(RULE_FIGURES, 0))
    for m in months:
        for rule, r in m["rules"].items():
            for key in totals[rule]:
                totals[rule][key] += r[key]
    found_all = sum(m[f"hits_{c}"] for m in months for c in CHANNELS)
    random_found, random_done = (
        sum(m["hits_random"] for m in months),
        sum(m["finished_random"] for m in months),
    )
    random_rate = random_found / random_done if random_done else math.nan
    out = []
    for rule, t in sorted(totals.items()):
        rate, low, high = proportion(t["found"], t["finished"])
        vs_random = difference(t["found"], t["finished"], random_found, random_done)
        flags = [
            flag
            for flag, on in (
                ("never fires", t["fired"] == 0),
                ("never finds", t["finished"] > 0 and t["found"] == 0),
                ("below random", vs_random[2] < 0),
            )
            if on
        ]
        out.append(
            {
                "rule": rule,
                **t,
                "hit_rate": rate,
                "low": low,
                "high": high,
                "share_of_detections": _share(t["credited"], found_all),
                "random_hit_rate": random_rate,
                **dict(zip(("vs_random", "vs_random_low", "vs_random_high"), vs_random)),
                "flags": flags,
            }
        )
    return out
