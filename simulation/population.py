"""The simulated world: enterprises with a hidden propensity to violate, and every declaration of the
horizon drawn up front with its ground truth draw.

Everything is drawn from seeded numpy streams, one per purpose, so two scenarios with the same seed
share their declarations and draws (common random numbers): raising the random ratio only adds
declarations to the random sample, it never reshuffles who lodged what.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.declarations import CreditClass
from engine.randomness import stream_generator
from engine.selection import CREDIT_CLASSES  # integer codes index into it (the engine's one list)
from simulation.scenario import Scenario

CERTIFIED = [CREDIT_CLASSES.index(CreditClass.advanced_certified), CREDIT_CLASSES.index(CreditClass.general_certified)]


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
    propensity = np.zeros(n)
    for code in np.unique(credit):
        where = credit == code
        spec = pop.violation[CREDIT_CLASSES[code]]
        a, b = spec.mean * spec.concentration, (1 - spec.mean) * spec.concentration
        propensity[where] = rng.beta(a, b, where.sum())
    for number, p in pop.overrides.items():
        propensity[number] = p
    history = np.where(rng.random(n) < pop.new_share, 0, rng.integers(1, 500, n))
    return Enterprises(credit.astype(np.int8), propensity, volume, history)


@dataclass
class Declarations:
    """Every declaration of the horizon, in arrival order. Times are hours since the horizon start."""

    arrival_h: np.ndarray
    enterprise: np.ndarray
    goods: pd.DataFrame  # one row per declaration: hs_code, origins, transport, mass, value, quantity, trade_mode
    u_violation: np.ndarray  # violates when below the firm's propensity at arrival
    u_random: np.ndarray  # the random channel's draw (compared with ratio x credit multiplier)
    u_instruction: np.ndarray  # the intelligence channel's draw
    u_credit: np.ndarray  # the credit channel's draw (compared with the class's floor)

    def __len__(self) -> int:
        return len(self.arrival_h)


def arrival_rates(scenario: Scenario) -> np.ndarray:
    """Mean declarations in each hour of the horizon."""
    a, start = scenario.arrivals, scenario.horizon.start
    profile = np.asarray(a.hourly_profile, float) / sum(a.hourly_profile)
    days = [start + dt.timedelta(days=d) for d in range(scenario.horizon.n_days)]
    per_day = np.array([a.per_day * (a.weekend_factor if d.weekday() >= 5 else 1.0)
                        * a.monthly_factor.get(d.month, 1.0) for d in days])
    return (per_day[:, None] * profile[None, :]).ravel()


def declarations(scenario: Scenario, firms: Enterprises, goods_table: pd.DataFrame) -> Declarations:
    seed = scenario.seed
    rng = stream_generator(seed, "arrivals")
    counts = rng.poisson(arrival_rates(scenario))
    hours = np.repeat(np.arange(len(counts)), counts)
    arrival = np.sort(hours + rng.random(hours.size))  # a Poisson process: uniform inside each hour
    n = arrival.size
    enterprise = rng.choice(len(firms), size=n, p=firms.volume).astype(np.int32)
    goods_rng = stream_generator(seed, "goods")
    goods = goods_table.iloc[goods_rng.integers(0, len(goods_table), n)].reset_index(drop=True)
    modes = scenario.goods.trade_modes
    goods["trade_mode"] = goods_rng.choice(list(modes), size=n, p=np.asarray(list(modes.values())) / sum(modes.values()))
    return Declarations(
        arrival_h=arrival, enterprise=enterprise, goods=goods,
        u_violation=stream_generator(seed, "violation").random(n),
        u_random=stream_generator(seed, "random").random(n),
        u_instruction=stream_generator(seed, "instruction").random(n),
        u_credit=stream_generator(seed, "credit").random(n))


def read_goods(path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"hs_code": str, "origin_country": str, "departure_country": str,
                                     "transport_mode": str})
    table["hs_code"] = table["hs_code"].str.zfill(6)
    return table
