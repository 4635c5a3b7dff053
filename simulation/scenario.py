"""The scenario file: everything a simulated customs office needs, validated with pydantic.

A scenario is YAML. Every error names the file, the field path and what is wrong. Any field can be
overridden from the command line by dotted path (`--set policy.random_ratio=0.05`).
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.declarations import ID_PATTERN, CreditClass, InspectionType
from engine.dispatch import FacilityType, Shift
from engine.errors import InputError, describe
from engine.files import parse_yaml, read_yaml
from engine.integrity import FeedbackPolicy
from engine.office import DEPARTMENTS
from engine.selection import SelectionPolicy

Share = Field(ge=0, le=1)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Horizon(Strict):
    """`start` is when the simulated office opens; the first `warmup_months` let the enterprises'
    standing settle and are simulated but left out of every metric; `months` (or `days`) are measured."""

    start: dt.date = dt.date(2026, 1, 1)
    warmup_months: int = Field(
        default=0, ge=0, le=60, description="simulated, then discarded from every metric"
    )
    months: int = Field(default=12, ge=1, le=120, description="measured after the warm-up")
    days: int | None = Field(default=None, ge=1, le=3660, description="instead of months, for short runs")

    @property
    def measured_start(self) -> dt.date:
        return add_months(self.start, self.warmup_months)

    @property
    def end(self) -> dt.date:
        if self.days is not None:
            return self.measured_start + dt.timedelta(days=self.days)
        return add_months(self.start, self.warmup_months + self.months)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day of the month `months` later (the month's last day where it has fewer days)."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Arrivals(Strict):
    per_day: float = Field(default=4000, gt=0, description="mean declarations on a weekday")
    weekend_factor: float = Field(
        default=0.4, ge=0, description="Saturday/Sunday volume relative to a weekday"
    )
    hourly_profile: list[float] = Field(
        default=[1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 9, 9, 10, 10, 9, 8, 6, 4, 3, 2, 1, 1],
        min_length=24,
        max_length=24,
        description="relative volume per hour of day",
    )
    monthly_factor: dict[int, float] = Field(default={2: 0.7}, description="month number -> volume factor")
    log: str | None = Field(
        default=None,
        description="an imported log's folder (doublerandom import): take the "
        "declarations, their times and firms, and where logged their outcomes from it",
    )

    @field_validator("hourly_profile")
    @classmethod
    def _positive_profile(cls, v: list[float]) -> list[float]:
        if min(v) < 0 or sum(v) <= 0:
            raise ValueError("hourly_profile needs 24 non-negative weights, not all zero")
        return v

    @field_validator("monthly_factor")
    @classmethod
    def _months(cls, v: dict[int, float]) -> dict[int, float]:
        bad = [m for m, f in v.items() if not 1 <= m <= 12 or f < 0]
        if bad:
            raise ValueError(f"months are 1-12 with a factor >= 0; bad: {bad}")
        return v


class Propensity(Strict):
    """Per-enterprise probability that a declaration violates: Beta with this mean and concentration."""

    mean: float = Field(gt=0, lt=1)
    concentration: float = Field(default=2.0, gt=0, description="lower = more unequal firms")


class Perceived(Strict):
    """General deterrence: a firm's chance of violating is multiplied by (q / reference_rate) ** -elasticity,
    q being the share of its declarations it believes get inspected: its own inspected share over the
    recent months (counts halving every `half_life_months`), pulled towards last month's office-wide
    inspection rate as if it had seen `prior_declarations` declarations at that rate (what it hears).
    The factor is held within [1 / max_factor, max_factor]. Not fitted: the elasticity is an assumption
    to vary (tax-audit studies find compliance responds to audit rates, with elasticities well under
    1); at 0 nothing changes."""

    elasticity: float = Field(ge=0, le=3)
    reference_rate: float = Field(default=0.05, gt=0, le=1, description="q at which the factor is 1")
    half_life_months: float = Field(default=6.0, gt=0)
    prior_declarations: float = Field(default=20.0, gt=0)
    max_factor: float = Field(default=3.0, ge=1)


class Population(Strict):
    enterprises: int = Field(default=20000, ge=1)
    volume_skew: float = Field(default=1.0, ge=0, description="Zipf exponent: a few big traders lodge most")
    new_share: float = Field(default=0.05, ge=0, le=1, description="firms with no earlier declaration")
    certified_by_volume: bool = Field(default=True, description="certified classes go to the biggest traders")
    credit_mix: dict[CreditClass, float] = {
        CreditClass.advanced_certified: 0.03,
        CreditClass.general_certified: 0.07,
        CreditClass.general: 0.88,
        CreditClass.dishonest: 0.02,
    }
    violation: dict[CreditClass, Propensity] = {
        CreditClass.advanced_certified: Propensity(mean=0.005, concentration=20),
        CreditClass.general_certified: Propensity(mean=0.01, concentration=10),
        CreditClass.general: Propensity(mean=0.03, concentration=1.5),
        CreditClass.dishonest: Propensity(mean=0.15, concentration=3),
    }
    deterrence: float = Field(
        default=0.0, ge=0, lt=1, description="propensity x (1 - this) after each inspection"
    )
    adaptation: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="adaptation to published rules: the share of the violation risk on declarations a rule "
        "names by their goods, origin or value that firms move to declarations no rule names (each class's "
        "level kept)",
    )
    perceived: Perceived | None = Field(
        default=None, description="general deterrence: firms violate less the likelier they think inspection"
    )
    overrides: dict[int, float] = Field(default={}, description="enterprise number -> fixed propensity")
    turnover: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of enterprises leaving each year, each "
        "replaced by a new one (no history, the class it started in, dishonest -> general)",
    )

    @field_validator("credit_mix")
    @classmethod
    def _mix_sums_to_one(cls, v: dict) -> dict:
        if abs(sum(v.values()) - 1) > 1e-6 or min(v.values()) < 0:
            raise ValueError(f"credit_mix shares must be >= 0 and sum to 1, they sum to {sum(v.values()):g}")
        return v

    @model_validator(mode="after")
    def _every_class_has_a_propensity(self) -> Population:
        missing = [c.value for c, share in self.credit_mix.items() if share > 0 and c not in self.violation]
        if missing:
            raise ValueError(f"violation has no propensity for credit classes {missing}")
        bad = [k for k, p in self.overrides.items() if not (0 <= k < self.enterprises and 0 <= p <= 1)]
        if bad:
            raise ValueError(
                f"overrides need enterprise numbers 0..{self.enterprises - 1} and propensities in [0, 1]: "
                f"{bad}"
            )
        return self


class Drift(Strict):
    """From `at` on, the violation log-odds of the declarations in a segment (goods from these
    origins and/or in these HS chapters) change by `log_odds`: a new fraud route (positive) or one
    closed (negative). Not re-centred: the population's level changes with it."""

    at: dt.date
    origin_country: list[str] = []
    hs_chapter: list[str] = []
    log_odds: float = Field(ge=-10, le=10)

    @model_validator(mode="after")
    def _a_segment(self) -> Drift:
        if not self.origin_country and not self.hs_chapter:
            raise ValueError("a drift names its segment: origin_country and/or hs_chapter")
        return self


class Goods(Strict):
    table: str = Field(
        default="goods/kcs_mix.csv", description="CSV of goods lines to draw from, relative to the scenario"
    )
    risk: str | None = Field(
        default="risk/kcs_effects.csv",
        description="fitted goods/origin/value effects (simulation.risk); null: goods carry no risk",
    )
    risk_strength: float = Field(
        default=1.0, ge=0, description="multiplies the fitted effects (sensitivity checks)"
    )
    trade_modes: dict[str, float] = {"general": 0.8, "processing": 0.08, "bonded": 0.07, "ecommerce": 0.05}
    drift: list[Drift] = Field(default=[], description="shifts of a segment's violation risk during the run")


class Learning(Strict):
    """The learned score inside a run (`policy.model` says how selection uses it): trained on the
    declarations inspected so far, their labels what the inspection found, and retrained every
    `retrain_days`; the first training at the first retraining day with `min_labels` labels. With
    `ipw`, each label weighs the inverse of its inclusion probability, so the random channel's
    unbiased labels count for the population."""

    retrain_days: int = Field(default=30, ge=1, le=366)
    ipw: bool = False
    min_labels: int = Field(default=200, ge=10)
    rounds: int = Field(default=150, ge=10, le=2000, description="boosting rounds per training")


class Instruction(Strict):
    """Inspections ordered by risk officers on intelligence, outside the computer's selection."""

    rate: float = Field(default=0.0, ge=0, le=1, description="share of declarations flagged")
    lift: float = Field(default=3.0, ge=1, description="how much likelier a violating declaration is flagged")


class Adaptive(Strict):
    """A monthly controller moving the computer-selection share toward a target trajectory, by trading
    instruction dispatches for random selection within the same (or a capacity-capped) workload."""

    start_share: float = Field(ge=0, le=1, description="target computer-selection share in the first month")
    end_share: float = Field(ge=0, le=1, description="... in the last month, linear in between")
    max_ratio: float = Field(default=0.2, gt=0, le=1)
    max_utilization: float = Field(default=0.85, gt=0, le=1, description="shrink the workload above this")
    gain: float = Field(default=1.0, gt=0, le=1, description="share of the correction applied each month")


class ShiftShare(Strict):
    hours: str = Field(description="'HH:MM-HH:MM', may cross midnight")
    share: float = Field(default=1.0, gt=0)
    weekdays: list[int] = [0, 1, 2, 3, 4, 5, 6]

    @field_validator("hours")
    @classmethod
    def _parses(cls, v: str) -> str:
        Shift.parse(v)
        return v


class Inspectors(Strict):
    count: int = Field(default=100, ge=1)
    shifts: list[ShiftShare] = Field(
        default=[ShiftShare(hours="08:00-16:00", share=0.6), ShiftShare(hours="16:00-00:00", share=0.4)],
        min_length=1,
    )
    qualified: dict[InspectionType, float] = Field(
        default={InspectionType.document: 1.0, InspectionType.scan: 0.7, InspectionType.physical: 0.8},
        description="share of inspectors qualified for each inspection type",
    )
    weighting: Literal["workload", "uniform"] = "workload"
    per_declaration: float = Field(default=10, ge=0)
    per_item: float = Field(default=5, ge=0)
    rotation_days: float = Field(default=0, ge=0, description="same inspector, same firm: not within this")
    max_open: int | None = Field(
        default=None, ge=1, description="most inspections an inspector holds open; none: no cap, as live"
    )

    @field_validator("qualified")
    @classmethod
    def _shares(cls, v: dict) -> dict:
        bad = {k.value: s for k, s in v.items() if not 0 < s <= 1}
        if bad:
            raise ValueError(f"qualified shares must be in (0, 1]: {bad}")
        return v


class Site(Strict):
    """One customs office (or inspection site) of a multi-site scenario: its share of the
    declarations, its own inspectors and facilities. Declarations carry their site (the rules read it
    as `customs_office`) and are inspected only by the site's inspectors, at the site's facilities."""

    name: str = Field(pattern=ID_PATTERN, description="the customs_office code declarations carry")
    share: float = Field(gt=0, description="relative share of all declarations")
    inspectors: Inspectors = Inspectors()
    facilities: dict[FacilityType, int] = {
        FacilityType.document_desk: 20,
        FacilityType.machine_scan: 6,
        FacilityType.physical_bay: 20,
        FacilityType.laboratory: 2,
    }


DEFAULT_SITE = "PORT"  # the one site of a scenario without `sites:`


class ServiceTime(Strict):
    dist: Literal["exponential", "lognormal", "fixed"] = "lognormal"
    mean_h: float = Field(ge=0)

    @model_validator(mode="after")
    def _zero_only_fixed(self) -> ServiceTime:
        """A fixed zero delay is allowed (no release step); a random one needs a positive mean."""
        if self.mean_h == 0 and self.dist != "fixed":
            raise ValueError(f"a {self.dist} time needs mean_h > 0 (only a fixed time may be 0)")
        return self

    cv: float = Field(default=0.5, ge=0, description="coefficient of variation (lognormal)")


class Inspection(Strict):
    service: dict[InspectionType, ServiceTime] = {
        InspectionType.document: ServiceTime(mean_h=0.5, cv=0.5),
        InspectionType.scan: ServiceTime(mean_h=0.4, cv=0.4),
        InspectionType.physical: ServiceTime(mean_h=2.0, cv=0.6),
    }
    detection: dict[InspectionType, float] = {
        InspectionType.document: 0.5,
        InspectionType.scan: 0.7,
        InspectionType.physical: 0.9,
    }
    assumed_detection: dict[InspectionType, float] | None = Field(
        default=None,
        description="the detection probabilities the office believes, which the compliance estimate divides "
        "by; none: it knows the true `detection` (a live office does not: state what it assumes)",
    )
    instructed_type: InspectionType = InspectionType.physical
    departments: dict[str, float] = Field(
        default={
            "duties": 0.5,
            "anti_smuggling": 0.2,
            "health_quarantine": 0.15,
            "intellectual_property": 0.1,
            "other": 0.05,
        },
        description="where problems are transferred, as shares",
    )

    @model_validator(mode="after")
    def _every_type(self) -> Inspection:
        for name, table in (("service", self.service), ("detection", self.detection)):
            missing = [t.value for t in InspectionType if t not in table]
            if missing:
                raise ValueError(f"{name} needs an entry for {missing}")
        unknown = set(self.departments) - set(DEPARTMENTS)
        if unknown or not self.departments or min(self.departments.values()) < 0:
            raise ValueError(
                f"departments are shares >= 0 over {', '.join(DEPARTMENTS)}; got {sorted(self.departments)}"
            )
        believed = self.assumed_detection or {}
        bad = {t.value: p for t, p in {**self.detection, **believed}.items() if not 0 <= p <= 1}
        if bad:
            raise ValueError(f"detection probabilities must be in [0, 1]: {bad}")
        if believed and set(believed) != set(InspectionType):
            raise ValueError("assumed_detection needs an entry for every inspection type")
        return self


class Release(Strict):
    delay: ServiceTime = ServiceTime(dist="exponential", mean_h=0.5)


class Scenario(Strict):
    name: str = "scenario"
    seed: int = Field(default=1, ge=0)
    horizon: Horizon = Horizon()
    arrivals: Arrivals = Arrivals()
    population: Population = Population()
    goods: Goods = Goods()
    rules: str = Field(default="rules/baseline.yaml", description="rules file, relative to the scenario")
    policy: SelectionPolicy = SelectionPolicy()
    instruction: Instruction = Instruction()
    model: Learning | None = Field(default=None, description="train the score `policy.model` ranks by")
    adaptive: Adaptive | None = None
    sites: list[Site] = Field(
        min_length=1,
        description="the offices: each with its share of the declarations, "
        "its inspectors and its facilities (`normalise` makes them from the file)",
    )
    inspection: Inspection = Inspection()
    feedback: FeedbackPolicy = FeedbackPolicy()
    release: Release = Release()
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sites")
    @classmethod
    def _distinct_sites(cls, v: list[Site]) -> list[Site]:
        names = [site.name for site in v]
        if len(set(names)) != len(names):
            raise ValueError(f"site names must differ; got {names}")
        return v

    @model_validator(mode="after")
    def _model_both_ways(self) -> Scenario:
        if (self.model is None) != (self.policy.model is None):
            raise ValueError(
                "a learned score needs both `model` (how the run trains it) and `policy.model` "
                "(how selection ranks by it)"
            )
        return self

    def path(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"base_dir"})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()


def load(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override (`a.b=value`, value in YAML syntax) and validate a scenario file."""
    path = Path(path)
    raw = read_raw(path)
    for item in overrides or []:
        if item.split("=", 1)[0].strip() == "sites":  # as in a variant file: the sites replace the one site
            raw = _without_one_site(raw, {"sites": None})
        apply_override(raw, item, str(path))
    return validate(raw, str(path), path.parent)


def normalise(raw: dict, source: str) -> dict:
    """One shape for every scenario: `sites`. Without `sites:` the top-level `inspectors` and
    `facilities` make the one site (PORT). With `sites:`, the top-level `inspectors` is the office's
    template (shifts, qualifications, dispatch weighting, workload points, rotation) that each site's
    own settings override; a top-level `inspectors.count` or `facilities` beside `sites` is an error
    naming the field, never silently unused. `inspectors.scale` multiplies every site's inspector
    count (at least one each): the capacity axis that works on any scenario."""
    out = copy.deepcopy(raw)
    template = out.pop("inspectors", None) or {}
    facilities = out.pop("facilities", None)
    if not isinstance(template, dict):
        raise InputError(f"{source}: field 'inspectors': a section of settings, got {template!r}")
    scale = template.pop("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e6:
        raise InputError(f"{source}: field 'inspectors.scale': a positive number, got {scale!r}")
    if out.get("sites") is None:
        out["sites"] = [
            {
                "name": DEFAULT_SITE,
                "share": 1.0,
                "inspectors": template,
                **({"facilities": facilities} if facilities is not None else {}),
            }
        ]
    else:
        for field, present in (
            ("inspectors.count", "count" in template),
            ("facilities", facilities is not None),
        ):
            if present:
                raise InputError(
                    f"{source}: field '{field}': with sites, each site has its own: set "
                    f"sites[NAME].{field}"
                    + (", or scale every site's with inspectors.scale" if field == "inspectors.count" else "")
                )
        for site in out["sites"] if isinstance(out["sites"], list) else []:
            if isinstance(site, dict) and isinstance(site.get("inspectors", {}), dict):
                site["inspectors"] = merged(template, site.get("inspectors") or {})
    if scale != 1:
        for site in out["sites"] if isinstance(out["sites"], list) else []:
            spec = site.get("inspectors") if isinstance(site, dict) else None
            if isinstance(spec, dict):
                count = spec.get("count", Inspectors.model_fields["count"].default)
                spec["count"] = max(1, round(count * scale)) if isinstance(count, int) else count
    return out


def validate(raw: dict, source: str, base_dir: Path) -> Scenario:
    one_site = raw.get("sites") is None
    raw = normalise(raw, source)
    try:
        scenario = Scenario.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as err:
        message = str(describe(source, err))
        if one_site:  # name the field as the file wrote it
            message = message.replace("field 'sites[0].inspectors", "field 'inspectors").replace(
                "field 'sites[0].facilities", "field 'facilities"
            )
        raise InputError(message) from None
    for name, relative in (
        ("rules", scenario.rules),
        ("goods.table", scenario.goods.table),
        ("goods.risk", scenario.goods.risk),
    ):
        if relative is not None and not scenario.path(relative).is_file():
            raise InputError(f"{source}: field '{name}': no such file {scenario.path(relative)}")
    return scenario


def apply_override(raw: dict, item: str, source: str = "--set") -> None:
    """`policy.random_ratio=0.05` sets raw['policy']['random_ratio'] = 0.05 (the value parsed as YAML)."""
    if "=" not in item:
        raise InputError(f"{source}: --set {item!r}: expected path=value, e.g. policy.random_ratio=0.05")
    dotted, text = item.split("=", 1)
    value = parse_yaml(text, f"{source}: --set {item!r}")
    set_path(raw, dotted.strip(), value, f"{source}: --set {item!r}")


def set_path(raw: dict, dotted: str, value: Any, where: str = "") -> None:
    """raw['a']['b'] = value for dotted 'a.b', creating sections as needed."""
    keys, node = dotted.split("."), raw
    for key in keys[:-1]:
        named = re.fullmatch(r"(\w+)\[([^\]]+)\]", key)
        if named:  # sites[SHA]: the element of a list with that name
            node = _named(node.get(named.group(1)), named.group(2), f"{where or dotted}: '{named.group(1)}'")
            continue
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise InputError(f"{where or dotted}: '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def _named(items: Any, name: str, where: str) -> dict:
    found = (
        [x for x in items if isinstance(x, dict) and x.get("name") == name] if isinstance(items, list) else []
    )
    if not found:
        names = [x.get("name") for x in items if isinstance(x, dict)] if isinstance(items, list) else []
        raise InputError(
            f"{where}: no element named {name!r} (names: {', '.join(map(str, names)) or 'none'})"
        )
    return found[0]


def read_raw(path: str | Path) -> dict:
    """The scenario file as a plain mapping, before validation (for sweeps that vary it)."""
    path = Path(path)
    raw = read_yaml(path, "scenario")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a scenario is a mapping of settings, got {type(raw).__name__}")
    if "extends" in raw:  # a variant: the base file's settings, with these on top
        base_file = path.parent / str(raw.pop("extends"))
        if not base_file.is_file():
            raise InputError(f"{path}: field 'extends': no such file {base_file}")
        raw = merged(
            _without_one_site(_rebased(read_raw(base_file), base_file.parent, path.parent), raw), raw
        )
    return raw


def _without_one_site(base: dict, top: dict) -> dict:
    """A variant that lists `sites` replaces its base's one site: the base's inspector count and
    facilities go (its other inspector settings stay, as the office's template)."""
    if "sites" not in top:
        return base
    out = copy.deepcopy(base)
    out.pop("facilities", None)
    if isinstance(out.get("inspectors"), dict):
        out["inspectors"].pop("count", None)
    return out


# File settings and their defaults, relative to the scenario file that names them (or inherits them).
FILE_SETTINGS = {
    ("rules",): Scenario.model_fields["rules"].default,
    ("goods", "table"): Goods.model_fields["table"].default,
    ("goods", "risk"): Goods.model_fields["risk"].default,
}


def _rebased(raw: dict, base_dir: Path, top_dir: Path) -> dict:
    """The base file's relative file paths (its defaults included), re-expressed from the extending
    file's folder, so `extends: ../other/base.yaml` finds the files the base meant."""
    if base_dir.resolve() == top_dir.resolve():
        return raw
    out = copy.deepcopy(raw)
    for keys, default in FILE_SETTINGS.items():
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(keys[-1], default)
        if isinstance(value, str) and not Path(value).is_absolute():
            node[keys[-1]] = os.path.relpath((base_dir / value).resolve(), top_dir.resolve())
    return out


def merged(base: dict, top: dict) -> dict:
    """`top`'s settings over `base`'s, section by section."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
