"""The first random of double random: which declarations get inspected, and why.

A declaration is selected through three independent computer channels:
- random: a draw compared with the pure random ratio r, taken over *all* declarations whatever
  the rules say (so the random sample estimates compliance of the whole population), scaled by the
  enterprise's credit class (advanced certified 0.2x, general certified 0.5x);
- targeted: a risk rule fired, and its own sampling draw fell under the rule's sampling rate, scaled
  by the same credit multiplier (the credit rules are about the *total* inspection rate); or, when
  the office has an expected rate, the declaration's risk score (the sum of its fired rules'
  weights) is among the highest that rate allows (engine.capacity);
- credit: a floor for a class (dishonest firms: at least 0.8), its own draw, so that the random
  channel stays a pure sample with known inclusion probabilities.
Every number compared is kept in the Decision, so an auditor can replay it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.capacity import Paced, Pacer
from engine.declarations import CreditClass, Declaration, Enterprise, InspectionType
from engine.errors import InputError
from engine.randomness import Draws
from engine.rules import RuleSet
from engine.score import LearnedScore, inputs


class ScoreModel(BaseModel):
    """How the targeted channel uses a learned score (a probability of violating per declaration):
    it ranks by `weight` x the probability, alone or added to the rules' score, under the office's
    expected rate. A declaration it takes and no rule flagged gets `inspection`."""

    model_config = ConfigDict(extra="forbid")

    combine: Literal["alone", "added"] = "alone"
    weight: float = Field(default=10.0, gt=0, le=1000, description="the score of a probability of 1")
    inspection: InspectionType = InspectionType.physical

    def rank(self, score, probability):
        """What the targeted channel ranks by: `weight` x the probability, alone or added to the rules'
        score (arrays or plain floats alike; one arithmetic for a batch, a decision and a stored one)."""
        return (score if self.combine == "added" else 0.0) + self.weight * probability


class SelectionPolicy(BaseModel):
    """The sampling percentages policy staff set; defaults follow the customs credit measures."""

    model_config = ConfigDict(extra="forbid")

    random_ratio: float = Field(default=0.03, ge=0, le=1)
    # The measures bound the *total* rate (under 0.2x and 0.5x the general average). Every channel is
    # scaled, and channels combine as 1 - prod(1 - p), which is a little over the scaled sum's share:
    # multipliers at the bounds themselves land just above them, so the defaults keep a margin.
    credit_multipliers: dict[CreditClass, float] = {
        CreditClass.advanced_certified: 0.15,
        CreditClass.general_certified: 0.4,
        CreditClass.general: 1.0,
        CreditClass.dishonest: 1.0,
    }
    credit_floors: dict[CreditClass, float] = {CreditClass.dishonest: 0.8}
    rule_sampling: dict[str, float] = Field(default={}, description="rule id -> rate, overrides the file")
    random_inspection: InspectionType = InspectionType.physical
    # Capacity: with an expected rate the computer selects that share of an office's declarations:
    # the random channel and the credit floor take theirs, and the targeted channel tops them up
    # with the highest risk scores (engine.capacity), instead of sampling each rule at its rate.
    expected_rate: float | None = Field(default=None, ge=0, le=1)
    office_expected_rates: dict[str, float] = Field(
        default={}, description="customs office -> its expected rate"
    )
    rate_window: int = Field(
        default=2000, ge=1, le=100_000, description="declarations the online cutoff looks back over"
    )
    rate_refresh: int = Field(default=200, ge=1, description="declarations between two cutoffs")
    # A floor under the random ratio that no setting (nor the tuner) goes below.
    min_random_rate: float = Field(default=0.0, ge=0, le=1)
    model: ScoreModel | None = Field(default=None, description="a learned score in the targeted channel")

    @model_validator(mode="after")
    def _refresh_inside_window(self) -> SelectionPolicy:
        if self.rate_refresh > self.rate_window:
            raise ValueError(
                f"rate_refresh ({self.rate_refresh}) must not exceed rate_window ({self.rate_window})"
            )
        if any(not 0 <= r <= 1 for r in self.office_expected_rates.values()):
            raise ValueError("office_expected_rates must lie in [0, 1]")
        if self.model is not None and not self.paced:
            raise ValueError("a learned score ranks under an expected rate: set expected_rate with model")
        return self

    @property
    def paced(self) -> bool:
        """Whether the targeted channel works to an expected rate."""
        return self.expected_rate is not None or bool(self.office_expected_rates)

    def expected_rate_for(self, office: str) -> float:
        return self.office_expected_rates.get(office, self.expected_rate or 0.0)

    def random_threshold(self, credit: CreditClass) -> float:
        """The probability that the random channel picks a declaration of this credit class."""
        return min(1.0, max(self.random_ratio, self.min_random_rate) * self.multiplier(credit))

    def multiplier(self, credit: CreditClass) -> float:
        return self.credit_multipliers.get(credit, 1.0)

    def floor(self, credit: CreditClass) -> float:
        """The credit channel's probability: a class's minimum inspection rate."""
        return self.credit_floors.get(credit, 0.0)


@dataclass(frozen=True)
class Decision:
    """Everything needed to explain and replay one selection."""

    declaration_id: str
    selected: bool
    channel: str  # random | targeted | both | credit | none
    rules: list[str]  # every active rule that matched
    sampled_rules: list[str]  # the matched rules whose sampling draw selected the declaration
    random_draw: float
    random_threshold: float
    rule_draws: dict[str, list[float]] = field(default_factory=dict)  # rule id -> [draw, rate]
    inclusion_probability: float = 0.0
    inspection_type: str | None = None
    credit_class: str = CreditClass.general.value
    rules_version: str = ""
    credit_draw: float = 1.0
    credit_threshold: float = 0.0  # the credit channel's floor for the class
    score: float = 0.0  # the risk score: the sum of the fired rules' weights
    lane: str = "green"  # green | yellow | red | blue (LANES)
    contributions: dict[str, float] = field(default_factory=dict)  # fired rule id -> its weight in the score
    cutoff: float | None = None  # with an expected rate: the score cutoff this declaration met or not
    tie: float = 0.0  # ... and the chance of a declaration scoring exactly the cutoff
    capacity_draw: float = 1.0  # ... and the draw compared with that chance
    # with a learned score (engine.score): {"model": its fingerprint, "probability", "inputs": every
    # input, "reasons": [[input, log-odds contribution], ...] largest first}
    learned: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain copy, as `asdict` gives, without its deep copy of every leaf (this runs for every
        decision, and the leaves are numbers and strings). A decision without a learned score has no
        `learned` key, as every decision had before there was one."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["rules"], out["sampled_rules"] = list(self.rules), list(self.sampled_rules)
        out["rule_draws"] = {k: list(v) for k, v in self.rule_draws.items()}
        out["contributions"] = dict(self.contributions)
        if self.learned is None:
            del out["learned"]
        return out


CREDIT_CLASSES = list(CreditClass)  # integer codes of the vectorised core index into this
_CREDIT_CODE = {c: k for k, c in enumerate(CREDIT_CLASSES)}
INSPECTION_TYPES = list(InspectionType)  # codes = intensity: document 0, scan 1, physical 2
NOT_INSPECTED = -1
# ASYCUDA's lanes: red (the goods are examined: physical or scan), yellow (documents only), blue
# (released at the border, referred to post-clearance audit: a certified firm whose declaration some
# rule flagged; the credit measures favour audit over border checks for certified firms), green
# (released). Codes index into this.
LANES = ("green", "yellow", "red", "blue")
_CERTIFIED = np.array(
    [c in (CreditClass.advanced_certified, CreditClass.general_certified) for c in CREDIT_CLASSES]
)


def lanes(inspection: np.ndarray, score: np.ndarray, credit: np.ndarray) -> np.ndarray:
    """Each declaration's lane code from its inspection (NOT_INSPECTED or a type code), risk score and
    credit class code: the one definition, for a decision and for a batch."""
    document = INSPECTION_TYPES.index(InspectionType.document)
    audit = (inspection == NOT_INSPECTED) & (score > 0) & _CERTIFIED[credit]
    # nested `where`, not `np.select`: the same codes at a fraction of the cost per hourly batch
    return np.where(inspection > document, 2, np.where(inspection == document, 1, np.where(audit, 3, 0)))


@dataclass(frozen=True)
class PolicyTable:
    """A policy worked out against a rules file, as arrays: the random channel's chance per credit
    class (in CREDIT_CLASSES order), and per rule (in file order) its sampling rate and inspection."""

    thresholds: np.ndarray
    multipliers: np.ndarray
    floors: np.ndarray
    rates: np.ndarray
    intensity: np.ndarray
    random_intensity: int
    weights: np.ndarray  # per rule: what it adds to the risk score
    paced: bool = False  # the targeted channel works to an expected rate
    model: ScoreModel | None = None  # how a learned score ranks, where the policy names one
    model_intensity: int = NOT_INSPECTED  # the inspection of a declaration only the learned score took

    def score(self, hits: np.ndarray) -> np.ndarray:
        """The risk score: the sum of the fired rules' weights, added in file order (as `choose_one`
        adds them for one declaration, so both speeds give the same float to the last bit)."""
        if not len(self.weights):
            return np.zeros(len(hits))
        # a running sum over the rules axis adds in file order, as a loop would (+0.0: as from zero)
        return np.add.accumulate(np.where(hits.T, self.weights[:, None], 0.0), axis=0)[-1] + 0.0

    def learned(self, probability) -> bool:
        """Whether a learned score ranks: the policy names one and its probabilities are given (a
        simulated run's score is not trained at first: the rules rank until it is)."""
        return self.model is not None and probability is not None

    def ranking(self, score, probability):
        """What the targeted channel ranks by: the rules' score, or with a learned score the
        model's probability x its weight, alone or added (arrays or plain floats alike)."""
        return self.model.rank(score, probability) if self.learned(probability) else score

    @classmethod
    def of(cls, policy: SelectionPolicy, rules: RuleSet) -> PolicyTable:
        model = policy.model
        return cls(
            np.array([policy.random_threshold(c) for c in CREDIT_CLASSES]),
            np.array([policy.multiplier(c) for c in CREDIT_CLASSES]),
            np.array([policy.floor(c) for c in CREDIT_CLASSES]),
            np.array([policy.rule_sampling.get(r.id, r.sampling_rate) for r in rules.rules]),
            np.array([r.inspection.intensity for r in rules.rules], dtype=int),
            policy.random_inspection.intensity,
            np.array([r.weight for r in rules.rules], dtype=float),
            policy.paced,
            model,
            model.inspection.intensity if model else NOT_INSPECTED,
        )

    def rule_rates(self, credit: np.ndarray) -> np.ndarray:
        """n x rules: each rule's sampling rate scaled by the declaration's credit multiplier."""
        return np.minimum(1.0, self.rates[None, :] * self.multipliers[credit][:, None])


@dataclass
class Choices:
    """The selection arithmetic's answer for n declarations (arrays of length n)."""

    threshold: np.ndarray  # the random channel's chance
    random_hit: np.ndarray
    sampled: np.ndarray  # n x rules: the rule fired and its sampling draw fell under its rate
    targeted: np.ndarray
    floor: np.ndarray  # the credit channel's chance
    credit_hit: np.ndarray  # the credit channel's draw fell under the floor
    inspection: np.ndarray  # code into INSPECTION_TYPES, NOT_INSPECTED when not selected
    inclusion: np.ndarray  # the chance of being selected by some computer channel
    score: np.ndarray  # the risk score: the sum of the fired rules' weights
    paced: Paced | None = None  # the capacity cutoffs, when the office has an expected rate
    # targeted by rules' sampling draws alone (every rule that selected it at a rate under 1): a random
    # pick. The other targeted picks are certain (a rule that inspects every hit selected it too) or
    # ranked (the highest scores under an expected rate)
    rule_drawn: np.ndarray | None = None

    @property
    def scored(self) -> np.ndarray:
        """Targeted without a draw: what `scored_share` counts (China's random-selection share does not)."""
        drawn = self.rule_drawn if self.rule_drawn is not None else np.zeros(len(self.targeted), bool)
        return self.targeted & ~drawn

    @property
    def selected(self) -> np.ndarray:
        return self.random_hit | self.targeted | self.credit_hit

    @property
    def credit_only(self) -> np.ndarray:
        """Selected by the credit floor alone: the `credit` channel."""
        return self.credit_hit & ~(self.random_hit | self.targeted)


Pace = Callable[
    [np.ndarray, np.ndarray, np.ndarray], Paced
]  # (scores, multipliers, taken) -> capacity cutoffs


def choose(
    table: PolicyTable,
    credit: np.ndarray,
    hits: np.ndarray,
    u_random: np.ndarray,
    u_rules: np.ndarray,
    u_credit: np.ndarray,
    pace: Pace | None = None,
    probability: np.ndarray | None = None,
) -> Choices:
    """The one definition of the selection arithmetic, for one declaration (arrays of length 1, live)
    or a batch (simulation, replay). `credit`: codes into CREDIT_CLASSES; `hits`: n x rules, which
    rules fired; `u_random`: the random channel's draws; `u_rules`: n x rules sampling draws (any
    value where a rule's scaled rate is 1: a draw under a rate of 1 always passes); `u_credit`:
    the credit channel's draws; `pace`: with an expected rate (table.paced), the offices' pacers
    bound to their draws: the targeted channel is theirs, and per-rule sampling is not used;
    `probability`: a learned score's, where the policy names one (table.model): the pacer
    ranks by `table.ranking` and a declaration it takes is targeted whether or not a rule fired."""
    threshold, floor = table.thresholds[credit], table.floors[credit]
    random_hit, credit_hit = u_random < threshold, u_credit < floor
    score, paced = table.score(hits), None
    by_model = np.zeros(len(credit), bool)
    if table.paced:
        if pace is None:
            raise ValueError("a policy with an expected rate needs the offices' pacers")
        paced = pace(table.ranking(score, probability), table.multipliers[credit], random_hit | credit_hit)
        sampled, rule_miss = hits & paced.hit[:, None], 1 - paced.chance
        rule_drawn = np.zeros(len(credit), bool)  # ranked, not drawn
        if table.learned(probability):
            by_model = paced.hit
    else:
        rates = table.rule_rates(credit)
        sampled, rule_miss = hits & (u_rules < rates), np.ones(len(credit))
        # drawn only when no rule that selected it was sure to: one at rate 1 makes the pick certain
        rule_drawn = sampled.any(axis=1) & ~(sampled & (rates >= 1)).any(axis=1)
        if hits.shape[1]:  # a running product multiplies in file order, as choose_one does
            rule_miss = np.multiply.accumulate(np.where(hits.T, 1 - rates.T, 1.0), axis=0)[-1]
    targeted = sampled.any(axis=1) | by_model
    inspection = np.where(sampled, table.intensity, NOT_INSPECTED).max(axis=1, initial=NOT_INSPECTED)
    inspection = np.where(by_model, np.maximum(inspection, table.model_intensity), inspection)
    inspection = np.where(random_hit | credit_hit, np.maximum(inspection, table.random_intensity), inspection)
    miss = (1 - threshold) * (1 - floor) * rule_miss
    return Choices(
        threshold,
        random_hit,
        sampled,
        targeted,
        floor,
        credit_hit,
        inspection,
        1 - miss,
        score,
        paced,
        rule_drawn,
    )


@dataclass(frozen=True)
class Choice:
    """`choose` for one declaration, as plain numbers (the live path: no arrays of one)."""

    threshold: float
    random_hit: bool
    sampled: tuple[int, ...]  # columns of the fired rules whose sampling (or the pacer) selected it
    targeted: bool
    floor: float
    credit_hit: bool
    inspection: int
    inclusion: float
    score: float
    lane: int
    cutoff: float | None = None
    tie: float = 0.0

    @property
    def selected(self) -> bool:
        return self.random_hit or self.targeted or self.credit_hit

    @property
    def credit_only(self) -> bool:
        return self.credit_hit and not (self.random_hit or self.targeted)


def choose_one(
    table: PolicyTable,
    credit: int,
    fired: list[int],
    u_random: float,
    u_rules: dict[int, float],
    u_credit: float,
    pace: Pace | None = None,
    probability: float | None = None,
) -> Choice:
    """`choose` for one declaration with plain numbers: the same arithmetic in the same order, so the
    live decision equals the batch core's to the last bit (a parity test holds them on random
    decisions). `fired`: columns of the rules that fired, in file order; `u_rules`: their draws."""
    threshold, floor = float(table.thresholds[credit]), float(table.floors[credit])
    random_hit, credit_hit = u_random < threshold, u_credit < floor
    weights, score = table.weights, 0.0
    for k in fired:
        score += float(weights[k])
    cutoff, tie, by_model = None, 0.0, False
    if table.paced:
        if pace is None:
            raise ValueError("a policy with an expected rate needs the offices' pacers")
        rank = table.ranking(score, probability)
        paced = pace(np.array([rank]), table.multipliers[[credit]], np.array([random_hit or credit_hit]))
        hit, rule_miss = bool(paced.hit[0]), 1 - float(paced.chance[0])
        sampled = tuple(fired) if hit else ()
        by_model = hit and table.learned(probability)
        cutoff, tie = float(paced.cutoff[0]), float(paced.tie[0])
    else:
        multiplier, rule_miss, picked = float(table.multipliers[credit]), 1.0, []
        for k in fired:
            rate = min(1.0, float(table.rates[k]) * multiplier)
            if u_rules[k] < rate:
                picked.append(k)
            rule_miss *= 1 - rate
        sampled = tuple(picked)
    intensities = [int(table.intensity[k]) for k in sampled]
    inspection = max(intensities, default=NOT_INSPECTED)
    if by_model:
        inspection = max(inspection, table.model_intensity)
    if random_hit or credit_hit:
        inspection = max(inspection, table.random_intensity)
    miss = (1 - threshold) * (1 - floor) * rule_miss
    return Choice(
        threshold,
        random_hit,
        sampled,
        bool(sampled) or by_model,
        floor,
        credit_hit,
        inspection,
        1 - miss,
        score,
        lane_one(inspection, score, credit),
        cutoff,
        tie,
    )


def lane_one(inspection: int, score: float, credit: int) -> int:
    """`lanes` for one declaration."""
    document = INSPECTION_TYPES.index(InspectionType.document)
    if inspection > document:
        return 2
    if inspection == document:
        return 1
    return 3 if inspection == NOT_INSPECTED and score > 0 and bool(_CERTIFIED[credit]) else 0


class Pacers:
    """Each office's pacer (engine.capacity), made on first use with the policy's window and
    refresh; the rate is read from the policy in force at each call."""

    def __init__(self):
        self.by_office: dict[str, Pacer] = {}

    def pacer(self, policy: SelectionPolicy, office: str) -> Pacer:
        if office not in self.by_office:
            self.by_office[office] = Pacer(
                policy.expected_rate_for(office), policy.rate_window, policy.rate_refresh
            )
        pacer = self.by_office[office]
        pacer.rate = policy.expected_rate_for(office)
        return pacer

    def restore(
        self, policy: SelectionPolicy, office: str, count: int, decisions: list[dict[str, Any]]
    ) -> None:
        """Rebuild an office's pacer from its stored decisions (its last `rate_window`, oldest first, as
        Decision dicts) and their total count: after a restart or a change of policy, the pacer
        carries on as if it had never stopped."""
        pacer = self.by_office[office] = Pacer(
            policy.expected_rate_for(office), policy.rate_window, policy.rate_refresh
        )
        pacer.restore(count, *_history(policy, decisions))

    def absorb(self, policy: SelectionPolicy, office: str, decisions: list[dict[str, Any]]) -> None:
        """Decisions made at an office by another instance since this one's last, in order (an office
        without a pacer yet is rebuilt from the store when first needed)."""
        if office in self.by_office and decisions:
            self.pacer(policy, office).absorb(*_history(policy, decisions))

    def pace(self, policy: SelectionPolicy, offices: np.ndarray, u: np.ndarray) -> Pace:
        """`choose`'s pace for declarations lodged at `offices` (in arrival order) with draws `u`."""

        def run(score: np.ndarray, multiplier: np.ndarray, taken: np.ndarray) -> Paced:
            rows = _rows_by_office(offices)
            if len(rows) == 1:  # one office (the common case): no split
                return self.pacer(policy, str(offices[0])).run(score, multiplier, u, taken)
            out = Paced(
                np.zeros(len(score), bool), np.zeros(len(score)), np.zeros(len(score)), np.zeros(len(score))
            )
            for office, at in rows.items():  # each office's pacer on its own rows, in arrival order
                part = self.pacer(policy, str(office)).run(score[at], multiplier[at], u[at], taken[at])
                out.hit[at], out.chance[at], out.cutoff[at], out.tie[at] = (
                    part.hit,
                    part.chance,
                    part.cutoff,
                    part.tie,
                )
            return out

        return run


def _rows_by_office(offices: np.ndarray) -> dict[str, np.ndarray]:
    """Each office's rows, in arrival order, found in one pass (comparing every row with each office,
    40 of them in the China-sized scenario, cost more than deciding the batch)."""
    rows: dict[str, list[int]] = {}
    for i, office in enumerate(offices.tolist()):
        rows.setdefault(office, []).append(i)
    return {office: np.array(at) for office, at in rows.items()}


def _history(policy: SelectionPolicy, decisions: list[dict[str, Any]]) -> tuple:
    """What a pacer remembers of stored decisions: scores, credit multipliers, targeted hits, those
    another channel took, and the last one's cutoff and tie."""
    last = decisions[-1] if decisions else {"cutoff": 0.0, "tie": 0.0}
    return (
        [_rank(policy, d) for d in decisions],
        [policy.multiplier(CreditClass(d.get("credit_class", "general"))) for d in decisions],
        [d["channel"] == "targeted" for d in decisions],
        [d["channel"] in ("random", "both", "credit") for d in decisions],
        last.get("cutoff"),
        last.get("tie", 0.0),
    )


def _rank(policy: SelectionPolicy, decision: dict[str, Any]) -> float:
    """What the pacer ranked a stored decision by: `PolicyTable.ranking`'s arithmetic."""
    score, learned = decision.get("score", 0.0), decision.get("learned")
    return policy.model.rank(score, learned["probability"]) if policy.model and learned else score


def channel(random_hit: bool, targeted: bool, credit_only: bool) -> str:
    """The channel that selected a declaration, as decisions and event logs name it."""
    if random_hit:
        return "both" if targeted else "random"
    return "targeted" if targeted else "credit" if credit_only else "none"


def live(policy: SelectionPolicy, score: LearnedScore | None = None) -> LearnedScore | None:
    """The score, if a live office can decide by the policy with it: a policy naming a learned
    score without its model file is refused, never silently ranked by the rules alone; a model file
    the policy does not use is refused, never silently ignored."""
    if policy.model is not None and score is None:
        raise InputError(
            "policy.model: ranking by a learned score needs its model file: give --model FILE "
            "(made by `doublerandom model train`)"
        )
    if policy.model is None and score is not None:
        raise InputError(
            "a model file is given but the policy names no learned score: add `model: {combine: "
            "added}` (or alone) and an expected_rate to the policy, or leave out --model"
        )
    return score


class Selector:
    """Rules + policy + a source of draws (+ the offices' pacers, when the policy has an expected
    rate): `decide(declaration, enterprise) -> Decision`, through `choose` with arrays of one."""

    def __init__(
        self,
        rules: RuleSet,
        policy: SelectionPolicy,
        draws: Draws,
        pacers: Pacers | None = None,
        score: LearnedScore | None = None,
    ):
        live(policy, score)
        self.rules, self.policy, self.draws, self.score = rules, policy, draws, score
        self.table = PolicyTable.of(policy, rules)
        self.pacers = pacers if pacers is not None else Pacers()
        self._column = {r.id: k for k, r in enumerate(rules.rules)}

    def decide(
        self, declaration: Declaration, enterprise: Enterprise, record: dict[str, float] | None = None
    ) -> Decision:
        """`record`: the importer's record (engine.score.FIRM counts), where a learned score ranks."""
        fired = self.rules.evaluate(declaration, enterprise)
        learned = None
        if self.score is not None:
            if record is None:
                raise InputError("a learned score needs the importer's record (the office's database)")
            values = inputs(declaration, record)
            learned = {
                "model": self.score.version,
                "probability": self.score.probability(values),
                "inputs": values,
                "reasons": self.score.reasons(values),
            }
        return self.decide_fired(
            declaration.id, enterprise.credit_class, fired, declaration.customs_office, learned
        )

    def decide_fired(
        self,
        declaration_id: str,
        credit: CreditClass,
        fired: list[str],
        office: str = "",
        learned: dict[str, Any] | None = None,
    ) -> Decision:
        """The decision once the rules have spoken: `choose_one`, the batch core's arithmetic on plain
        numbers."""
        u = self.draws.uniform(declaration_id, "random")  # drawn for every declaration: CRN
        u_credit = self.draws.uniform(declaration_id, "credit")
        credit = CreditClass(credit)
        code = _CREDIT_CODE[credit]
        columns = [self._column[r] for r in fired]
        u_rules, rule_draws = {}, {}
        if not self.table.paced:  # with an expected rate the score decides, not per-rule draws
            multiplier = float(self.table.multipliers[code])
            for rule_id, k in zip(fired, columns):
                rate = min(1.0, float(self.table.rates[k]) * multiplier)
                v = 0.0 if rate >= 1 else self.draws.uniform(f"{declaration_id}/{rule_id}", "rule_sampling")
                u_rules[k], rule_draws[rule_id] = v, [v, rate]
        u_capacity, pace = 1.0, None
        if self.table.paced:
            u_capacity = self.draws.uniform(declaration_id, "capacity")
            pace = self.pacers.pace(self.policy, np.array([office]), np.array([u_capacity]))
        probability = learned["probability"] if learned else None
        c = choose_one(self.table, code, columns, u, u_rules, u_credit, pace, probability)
        sampled = set(c.sampled)
        return Decision(
            declaration_id=declaration_id,
            selected=c.selected,
            channel=channel(c.random_hit, c.targeted, c.credit_only),
            rules=list(fired),
            sampled_rules=[r for r, k in zip(fired, columns) if k in sampled],
            random_draw=u,
            random_threshold=c.threshold,
            rule_draws=rule_draws,
            inclusion_probability=c.inclusion,
            inspection_type=INSPECTION_TYPES[c.inspection].value if c.inspection != NOT_INSPECTED else None,
            credit_class=credit.value,
            rules_version=self.rules.version,
            credit_draw=u_credit,
            credit_threshold=c.floor,
            score=c.score,
            lane=LANES[c.lane],
            contributions={r: float(self.table.weights[k]) for r, k in zip(fired, columns)},
            cutoff=c.cutoff,
            tie=c.tie,
            capacity_draw=u_capacity,
            learned=learned,
        )

    def sampling_rate(self, rule_id: str) -> float:
        return float(self.table.rates[self._column[rule_id]])
