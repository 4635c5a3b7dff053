"""The adaptive policy: each month, steer the random ratio toward a target computer-selection share.

China Customs' stated aim was to raise the share of inspections dispatched by computer random
selection (55% in H1 2015). The controller moves instruction (intelligence) dispatches into random
selection: from last month's counts it sets the random ratio so that random picks fill the target
share of the same total workload, and scales the instruction rate to fill the rest. When inspectors
were busier than `max_utilization`, the total is shrunk in proportion first.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulation.scenario import Adaptive


@dataclass(frozen=True)
class MonthCounts:
    random: int  # picked by the random draw
    targeted: int  # picked by rules only
    instructed: int
    utilization: float


def target_share(spec: Adaptive, month: int, months: int) -> float:
    if months <= 1:
        return spec.end_share
    return spec.start_share + (spec.end_share - spec.start_share) * month / (months - 1)


def next_settings(
    spec: Adaptive, month: int, months: int, last: MonthCounts, ratio: float, instruction_rate: float
) -> tuple[float, float]:
    """(random ratio, instruction rate) for `month`, from last month's counts."""
    total = last.random + last.targeted + last.instructed
    if total == 0:
        return ratio, instruction_rate
    if last.utilization > spec.max_utilization:
        total *= spec.max_utilization / last.utilization
    share = target_share(spec, month, months)
    wanted_random = max(share * total - last.targeted, 0.0)
    wanted_instructed = (1 - share) * total
    ideal_ratio = ratio * wanted_random / last.random if last.random else spec.max_ratio
    ideal_rate = (
        instruction_rate * wanted_instructed / last.instructed if last.instructed else instruction_rate
    )
    new_ratio = ratio + spec.gain * (min(ideal_ratio, spec.max_ratio) - ratio)
    new_rate = instruction_rate + spec.gain * (min(ideal_rate, 1.0) - instruction_rate)
    return max(new_ratio, 0.0), max(new_rate, 0.0)
