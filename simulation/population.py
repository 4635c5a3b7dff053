"""The simulated world: enterprises with a hidden propensity to violate, and their declarations with
each one's ground truth draw, drawn a calendar month at a time (`Chunk`), so a run holds a month of
declarations in memory, not its horizon.

Everything is drawn from seeded numpy streams, one per purpose and calendar month (numbered by the
month itself, not by its place in the horizon), so two scenarios with the same seed share their
declarations and draws (common random numbers): raising the random ratio only adds declarations to
the random sample, it never reshuffles who lodged what; and a month's declarations are the same
however the horizon is cut (a month is always drawn whole, and the hours outside the horizon are
never lodged).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from engine.declarations import CreditClass
from engine.errors import InputError
from engine.randomness import stream_generator
from engine.selection import CREDIT_CLASSES  # integer codes index into it (the engine's one list)
from engine.standing import DISHONEST
from simulation.risk import RiskTable, centred_shift, expit, logit
from simulation.scenario import Scenario

CERTIFIED = [
    CREDIT_CLASSES.index(CreditClass.advanced_certified),
    CREDIT_CLASSES.index(CreditClass.general_certified),
]


@dataclass
class Enterprises:
    """One entry per enterprise; the integrity state the simulation updates lives beside it."""

    credit: np.ndarray  # int8 code into CREDIT_CLASSES, at the start
    propensity: np.ndarray  # probability a declaration violates
    volume: np.ndarray  # share of all declarations
    history: np.ndarray  # declarations lodged before the horizon

    def __len__(self) -> int:
        return len(self.credit)


def enterprises(scenario: Scenario) -> Enterprises:
    pop, rng = scenario.population, stream_generator(scenario.seed, "population")
    n = pop.enterprises
    classes = list(pop.credit_mix)
    credit = rng.choice([CREDIT_CLASSES.index(c) for c in classes], size=n, p=list(pop.credit_mix.values()))
    volume = rng.permutation(np.arange(1, n + 1, dtype=float) ** -pop.volume_skew)
    volume /= volume.sum()
    if pop.certified_by_volume:  # certification goes to the biggest traders, as AEO status tends to
        certified = np.sort(credit[np.isin(credit, CERTIFIED)])
        others = rng.permutation(credit[~np.isin(credit, CERTIFIED)])
        credit = np.empty(n, credit.dtype)
        credit[np.argsort(-volume, kind="stable")] = np.concatenate([certified, others])
    propensity = draw_propensity(pop, credit, rng)
    for number, p in pop.overrides.items():
        propensity[number] = p
    history = np.where(rng.random(n) < pop.new_share, 0, rng.integers(1, 500, n))
    return Enterprises(credit.astype(np.int8), propensity, volume, history)


def draw_propensity(pop, credit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each enterprise's propensity to violate: Beta with its credit class's mean and concentration."""
    propensity = np.zeros(len(credit))
    for code in np.unique(credit):
        where = credit == code
        spec = pop.violation[CREDIT_CLASSES[code]]
        a, b = spec.mean * spec.concentration, (1 - spec.mean) * spec.concentration
        propensity[where] = rng.beta(a, b, where.sum())
    return propensity


def newcomers(
    scenario: Scenario, firms: Enterprises, month: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The enterprises that leave at the start of `month`, and the class and propensity of the new
    firm that takes over each one's trade (its volume and goods): the class it started in, or
    general where that was dishonest (a new firm has no record yet). One sub-stream per month, so a
    run's turnover does not depend on what happened before."""
    pop = scenario.population
    if not pop.turnover:
        return np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0)
    rng = stream_generator(scenario.seed, "turnover", month)
    leaving = np.flatnonzero(rng.random(len(firms)) < 1 - (1 - pop.turnover) ** (1 / 12))
    credit = firms.credit[leaving].copy()
    credit[credit == DISHONEST] = CREDIT_CLASSES.index(CreditClass.general)
    return leaving, credit, draw_propensity(pop, credit, rng)


@dataclass
class Declarations:
    """Every declaration of the horizon, in arrival order. Times are hours since the horizon start."""

    arrival_h: np.ndarray
    enterprise: np.ndarray
    goods: (
        pd.DataFrame
    )  # one row per declaration: hs_code, origins, transport, mass, value, quantity, trade_mode
    risk: np.ndarray  # log-odds the goods add to the firm's propensity (simulation.risk), centred per class
    site: np.ndarray  # index into scenario.sites: where it is lodged and inspected
    u_violation: np.ndarray  # violates when below violation_probability at arrival
    u_random: np.ndarray  # the random channel's draw (compared with ratio x credit multiplier)
    u_instruction: np.ndarray  # the intelligence channel's draw
    u_credit: np.ndarray  # the credit channel's draw (compared with the class's floor)
    u_capacity: np.ndarray  # the paced targeted channel's draw (engine.capacity)
    logged: np.ndarray | None = None  # from a log: 1/0 where it recorded the outcome, nan where it did not

    def __len__(self) -> int:
        return len(self.arrival_h)

    def hours(self, first: float, end: float) -> Declarations:
        """Those arriving from hour `first` up to `end`."""
        keep = slice(*np.searchsorted(self.arrival_h, [first, end]))
        part = {f.name: getattr(self, f.name) for f in fields(Declarations)}
        part = {name: None if value is None else value[keep] for name, value in part.items()}
        part["goods"] = part["goods"].reset_index(drop=True)
        return Declarations(**part)


@dataclass(frozen=True)
class Chunk:
    """One calendar month of arrivals: its stream number (year x 12 + month - 1), its first day, its
    days, and its first hour counted from the horizon's start (negative when the horizon starts later
    in the month)."""

    number: int
    first_day: dt.date
    days: int
    first_h: int

    @property
    def end_h(self) -> int:
        return self.first_h + 24 * self.days


def chunks(scenario: Scenario) -> list[Chunk]:
    """The calendar months the horizon touches, in order."""
    start, end = scenario.horizon.start, scenario.horizon.start + dt.timedelta(days=scenario.horizon.n_days)
    out, first = [], start.replace(day=1)
    while first < end:
        following = (first + dt.timedelta(days=32)).replace(day=1)
        out.append(
            Chunk(
                first.year * 12 + first.month - 1, first, (following - first).days, 24 * (first - start).days
            )
        )
        first = following
    return out


def arrival_rates(scenario: Scenario, first: dt.date | None = None, n_days: int | None = None) -> np.ndarray:
    """Mean declarations in each hour of `n_days` days from `first` (default: the horizon)."""
    a = scenario.arrivals
    first = scenario.horizon.start if first is None else first
    n_days = scenario.horizon.n_days if n_days is None else n_days
    profile = np.asarray(a.hourly_profile, float) / sum(a.hourly_profile)
    days = [first + dt.timedelta(days=d) for d in range(n_days)]
    per_day = np.array(
        [
            a.per_day * (a.weekend_factor if d.weekday() >= 5 else 1.0) * a.monthly_factor.get(d.month, 1.0)
            for d in days
        ]
    )
    return (per_day[:, None] * profile[None, :]).ravel()


def declarations(
    scenario: Scenario,
    firms: Enterprises,
    goods_table: pd.DataFrame,
    risk_table: RiskTable | None = None,
    chunk: Chunk | None = None,
) -> Declarations:
    """One month's declarations (all its hours, `arrival_h` from the horizon's start); without
    `chunk`, those of the whole horizon, month after month (what tests and references look at)."""
    if scenario.arrivals.log:
        return from_log(scenario, firms, risk_table)
    if chunk is None:
        n_hours = 24 * scenario.horizon.n_days
        months = [declarations(scenario, firms, goods_table, risk_table, c) for c in chunks(scenario)]
        return concat([m.hours(0, n_hours) for m in months])
    seed, number = scenario.seed, chunk.number
    rng = stream_generator(seed, "arrivals", number)
    counts = rng.poisson(arrival_rates(scenario, chunk.first_day, chunk.days))
    hours = np.repeat(np.arange(len(counts)), counts)
    arrival = chunk.first_h + np.sort(hours + rng.random(hours.size))  # Poisson: uniform inside each hour
    n = arrival.size
    enterprise = rng.choice(len(firms), size=n, p=firms.volume).astype(np.int32)
    goods_rng = stream_generator(seed, "goods", number)
    lines = goods_rng.integers(0, len(goods_table), n)
    goods = goods_table.iloc[lines].reset_index(drop=True)
    modes = scenario.goods.trade_modes
    mode = goods_rng.choice(len(modes), size=n, p=np.asarray(list(modes.values())) / sum(modes.values()))
    goods["trade_mode"] = pd.array(list(modes), dtype="str")[mode]  # a take: no string built per row
    return Declarations(
        arrival_h=arrival,
        enterprise=enterprise,
        goods=goods,
        risk=goods_risk(scenario, firms, enterprise, goods_table, lines, risk_table),
        site=sites(scenario, n, number),
        **draws(seed, n, number),
    )


def counted(scenario: Scenario, chunk: Chunk) -> tuple[int, int]:
    """How many of the month's declarations arrive before the horizon's start, and how many inside
    it: its arrival counts only, without drawing the rest, to number declarations without holding
    them."""
    rng = stream_generator(scenario.seed, "arrivals", chunk.number)
    counts = rng.poisson(arrival_rates(scenario, chunk.first_day, chunk.days))
    hour = np.arange(chunk.first_h, chunk.end_h)
    inside = (hour >= 0) & (hour < 24 * scenario.horizon.n_days)
    return int(counts[hour < 0].sum()), int(counts[inside].sum())


def draws(seed: int, n: int, *number: int) -> dict[str, np.ndarray]:
    """Each declaration's draws, one stream per purpose (and month: `number`), common random numbers
    across scenarios."""
    return {
        f"u_{purpose}": stream_generator(seed, purpose, *number).random(n)
        for purpose in ("violation", "random", "instruction", "credit", "capacity")
    }


def concat(parts: list[Declarations]) -> Declarations:
    """Declarations one after the other (parts in arrival order)."""
    out = {}
    for f in fields(Declarations):
        values = [getattr(p, f.name) for p in parts]
        if f.name == "goods":
            out[f.name] = pd.concat(values, ignore_index=True)
        elif f.name == "logged":
            out[f.name] = None if values[0] is None else np.concatenate(values)
        else:
            out[f.name] = np.concatenate(values)
    return Declarations(**out)


GOODS = [
    "hs_code",
    "origin_country",
    "departure_country",
    "transport_mode",
    "net_mass_kg",
    "declared_value",
    "quantity",
    "trade_mode",
]


def from_log(scenario: Scenario, firms: Enterprises, risk_table: RiskTable | None) -> Declarations:
    """Trace-driven arrivals: the imported log's declarations inside the horizon, at their logged
    times (a log of dates only gets an hour from the scenario's hourly profile and a uniform minute),
    its importers as the enterprises (in order of first appearance), its goods, and its outcomes
    where it logged them; declarations it never inspected violate by the fitted risk model."""
    from engine.imported import read  # the one reader of an imported log

    seed, start = scenario.seed, pd.Timestamp(scenario.horizon.start)
    log = read(scenario.path(scenario.arrivals.log))
    log = log[
        (log["declared_at"] >= start)
        & (log["declared_at"] < start + pd.Timedelta(days=scenario.horizon.n_days))
    ]
    if log.empty:
        raise InputError(
            f"{scenario.arrivals.log}: no declarations inside the horizon from {scenario.horizon.start}"
        )
    hours = (log["declared_at"] - start).dt.total_seconds().to_numpy() / 3600
    rng = stream_generator(seed, "arrivals")
    if (hours % 24 == 0).all():  # dates only
        profile = np.asarray(scenario.arrivals.hourly_profile, float)
        hours = hours + rng.choice(24, size=len(hours), p=profile / profile.sum()) + rng.random(len(hours))
    order = np.argsort(hours, kind="stable")
    log, hours = log.iloc[order].reset_index(drop=True), hours[order]
    enterprise, importers = pd.factorize(log["enterprise_id"])
    if len(importers) > len(firms):
        raise InputError(
            f"{scenario.arrivals.log}: {len(importers)} importers in the horizon; set "
            f"population.enterprises to at least that"
        )
    names = [site.name for site in scenario.sites]
    if len(names) == 1:
        site = np.zeros(len(log), np.int64)
    else:
        unknown = sorted(set(log["customs_office"]) - set(names))
        if unknown:
            raise InputError(
                f"{scenario.arrivals.log}: offices {', '.join(unknown[:5])} are not sites of the scenario"
            )
        site = log["customs_office"].map({n: k for k, n in enumerate(names)}).to_numpy()
    goods = log[GOODS].reset_index(drop=True)
    n = len(log)
    enterprise = enterprise.astype(np.int32)
    return Declarations(
        arrival_h=hours,
        enterprise=enterprise,
        goods=goods,
        risk=goods_risk(scenario, firms, enterprise, goods, np.arange(n), risk_table),
        site=site,
        logged=log["violation"].astype(float).to_numpy(),
        **draws(seed, n),
    )


def sites(scenario: Scenario, n: int, *number: int) -> np.ndarray:
    """Each declaration's site, drawn by the sites' shares (all 0 with one site: no draw spent)."""
    shares = np.array([site.share for site in scenario.sites])
    if len(shares) == 1:
        return np.zeros(n, np.int16)
    return (
        stream_generator(scenario.seed, "site", *number)
        .choice(len(shares), size=n, p=shares / shares.sum())
        .astype(np.int16)
    )


def goods_risk(
    scenario: Scenario,
    firms: Enterprises,
    enterprise: np.ndarray,
    goods_table: pd.DataFrame,
    lines: np.ndarray,
    risk_table: RiskTable | None,
) -> np.ndarray:
    """Each declaration's goods log-odds (scaled by `goods.risk_strength`), shifted per credit class so
    the class's mean violation rate stays the scenario's: the data give relative risks, not the level."""
    if risk_table is None or scenario.goods.risk_strength == 0:
        return np.zeros(len(lines))
    goods = scenario.goods.risk_strength * risk_table.line_logodds(goods_table)[lines]
    firm = propensity_logodds(firms.propensity)[enterprise]
    shift = centred_shift(firm, goods, firms.credit[enterprise])
    return goods + shift[firms.credit[enterprise]]


def adapted(
    risk: np.ndarray, named: np.ndarray, firm_logodds: np.ndarray, group: np.ndarray, share: float
) -> np.ndarray:
    """Adaptation to published rules (`population.adaptation`): firms learn what the rules name and
    move their violations elsewhere. The odds of violating on a named declaration are multiplied by
    (1 - share), then each credit class is shifted back to its own level, so violations move to the
    goods no rule names rather than vanish: the rules find less, a random draw finds as much.
    Not fitted: an assumption to vary (the frontier's sensitivity), taken as learned at the start."""
    if not share or not named.any():
        return risk
    moved = np.log1p(-share) * named
    shift = centred_shift(firm_logodds + risk, moved, group)
    return risk + moved + shift[group]


def drifted(risk: np.ndarray, goods: pd.DataFrame, arrival_h: np.ndarray, scenario: Scenario) -> np.ndarray:
    """`goods.drift`: from each drift's date on, its segment's log-odds move by its amount."""
    start = scenario.horizon.start
    for drift in scenario.goods.drift:
        segment = np.ones(len(risk), bool)
        if drift.origin_country:
            segment &= goods["origin_country"].isin(drift.origin_country).to_numpy()
        if drift.hs_chapter:
            segment &= goods["hs_code"].astype(str).str[:2].isin(drift.hs_chapter).to_numpy()
        after = arrival_h >= (drift.at - start).days * 24
        risk = risk + np.where(segment & after, drift.log_odds, 0.0)
    return risk


def propensity_logodds(propensity: np.ndarray) -> np.ndarray:
    """A firm's propensity on the log-odds scale (0 and 1, which overrides may set, kept finite)."""
    return logit(np.clip(propensity, 1e-9, 1 - 1e-9))


def violation_probability(propensity: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """A declaration's chance of violating: its firm's propensity and its goods' risk, on the log-odds
    scale."""
    return expit(propensity_logodds(propensity) + risk)


def read_goods(path) -> pd.DataFrame:
    table = pd.read_csv(
        path, dtype={"hs_code": str, "origin_country": str, "departure_country": str, "transport_mode": str}
    )
    table["hs_code"] = table["hs_code"].str.zfill(6)
    return table
