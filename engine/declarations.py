"""What the engine decides on: a customs declaration and the enterprise (trader) that lodged it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Callable, Iterable, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    computed_field,
    field_validator,
)

from engine.errors import InputError, describe
from engine.files import read_csv

Number = Annotated[float, Strict()]  # a JSON number: true/false or "12" is a mistake, not 1.0 or 12.0
# Codes are ASCII: `\d` would also take Arabic-Indic, Devanagari or full-width digits, and a code in
# those fires no HS rule (the rules compare texts), so every pattern spells its characters out.
HS_PATTERN = r"^[0-9]{6,10}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
Country = Field(pattern=COUNTRY_PATTERN, description="ISO 3166-1 alpha-2 code")

# Ids of declarations, enterprises, inspectors and offices: letters, digits, '.', '_' and '-', up to 64,
# starting with a letter or digit. URL-safe, so every id can be read over HTTP; '/' and '~' are never
# part of an id, so nothing the engine derives from an id (a re-check, a rule draw) can collide with one.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ID_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def unstorable(text: str) -> str | None:
    """Why a text cannot be kept alike on both databases, or None: PostgreSQL stores no NUL character
    (neither in text nor in JSON), and a lone surrogate is not UTF-8 on either."""
    if "\x00" in text:
        return "holds a NUL character, which the database cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def _storable(text: str) -> str:
    problem = unstorable(text)
    if problem:
        raise ValueError(f"the text {problem}")
    return text


# Free text a person writes (a reason, a finding's category): anything but what a database cannot store.
Text = Annotated[str, AfterValidator(_storable)]
# A reason must say something: at least one character that is neither white space nor a control
# character. Spelt out, so Python (str.strip counts \x1c-\x1f as space), the schema's regex (read
# by clients as ECMA-262, whose \s leaves out U+0085 and takes U+FEFF) and pydantic's (Rust's, whose
# \s is the reverse) agree on what is refused: the C1 controls (U+0085 among them) and U+FEFF are
# named outright. Schemathesis found "\u0085" accepted by the schema and refused by the service.
SAYS_SOMETHING = r"[^\s\x00-\x1f\x7f-\x9f\ufeff]"
# The same, said in the API's schema too: free text holds no NUL (PostgreSQL stores none), so a
# client reading the schema knows it is refused (schemathesis found a NUL category schema-valid)
STORABLE = r"^[^\x00]*$"
SAYS_SOMETHING_STORABLE = rf"^[^\x00]*{SAYS_SOMETHING}[^\x00]*$"


def says_something(text: str) -> bool:
    return re.search(SAYS_SOMETHING, text) is not None


def Id(description: str = "") -> Any:
    return Field(pattern=ID_PATTERN, description=f"{description} ({ID_RULE})".strip())


class CreditClass(str, Enum):
    """China Customs enterprise credit classes (2018 measures), from most to least trusted."""

    advanced_certified = "advanced_certified"
    general_certified = "general_certified"
    general = "general"
    dishonest = "dishonest"


class InspectionType(str, Enum):
    """Ordered by intensity: a declaration asked for by several rules gets the most intensive one."""

    document = "document"
    scan = "scan"
    physical = "physical"

    @property
    def intensity(self) -> int:
        return _INTENSITY[self]


_INTENSITY = {kind: i for i, kind in enumerate(InspectionType)}  # asked for each rule at each decision


class Declaration(BaseModel):
    """One import or export declaration as lodged; derived fields are what risk rules usually test."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "KR73239153",
                    "declared_at": "2026-04-01T10:47:00",
                    "enterprise_id": "IMP-LILE28O",
                    "hs_code": "930690",
                    "origin_country": "CN",
                    "departure_country": "CN",
                    "trade_mode": "general",
                    "transport_mode": "sea",
                    "customs_office": "OFF-40",
                    "declared_value": 92880.0,
                    "net_mass_kg": 75.0,
                    "quantity": 75.0,
                }
            ]
        },
    )  # the OpenAPI document's example (HS 930690: WEAPONS-PARTS, always inspected)

    id: str = Id("the declaration number")
    declared_at: dt.datetime
    enterprise_id: str = Id("the declaring enterprise")
    hs_code: str = Field(pattern=HS_PATTERN, description="6 to 10 digit HS/CN code (ASCII digits)")
    origin_country: str = Country
    departure_country: str = Country
    trade_mode: Literal["general", "processing", "bonded", "ecommerce", "other"] = "general"
    transport_mode: Literal["sea", "air", "road", "rail", "post", "other"]
    customs_office: str = Id("the office (site) where the goods are")
    declared_value: Number = Field(gt=0, allow_inf_nan=False, description="customs value, USD")
    net_mass_kg: Number = Field(gt=0, allow_inf_nan=False)
    quantity: Number = Field(gt=0, allow_inf_nan=False, description="in the tariff's statistical unit")
    items: int = Field(default=1, ge=1, le=999, description="goods items (lines) on the declaration")

    @field_validator("declared_at", mode="before")
    @classmethod
    def _iso_time(cls, value: Any) -> Any:
        """An ISO 8601 text, as the schema says; a bare number is not read as seconds since 1970."""
        if not isinstance(value, (str, dt.datetime)):
            raise ValueError("Input should be an ISO 8601 date and time such as 2026-06-01T09:30:00")
        return value

    @field_validator("items", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """A JSON integer (147 or 147.0, as JSON Schema has it), never true/false or text."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("Input should be a whole number")
        return value

    def as_input(self) -> dict[str, Any]:
        """The declaration as lodged (JSON types, no derived fields): what the audit log keeps."""
        return self.model_dump(mode="json", exclude=set(type(self).model_computed_fields))

    @computed_field
    @property
    def unit_value(self) -> float:
        """Declared value per statistical unit, USD: the classic under-valuation signal."""
        return DERIVED["unit_value"](self.declared_value, self.quantity)

    @computed_field
    @property
    def value_per_kg(self) -> float:
        return DERIVED["value_per_kg"](self.declared_value, self.net_mass_kg)

    @computed_field
    @property
    def hs_chapter(self) -> str:
        return DERIVED["hs_chapter"](self.hs_code)

    @computed_field
    @property
    def hs_heading(self) -> str:
        return DERIVED["hs_heading"](self.hs_code)


class Enterprise(BaseModel):
    """An enterprise's standing in the integrity store, as the rules see it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Id("the enterprise")
    credit_class: CreditClass = CreditClass.general
    high_risk: bool = False
    high_risk_until: dt.date | None = None
    declarations: int = Field(default=0, ge=0, le=10**15, description="declarations lodged before this one")
    inspections: int = Field(default=0, ge=0, le=10**15)
    problems: int = Field(default=0, ge=0, le=10**15)

    def high_risk_on(self, day: dt.date) -> bool:
        """The flag counts only until its expiry date (inclusive)."""
        return self.high_risk and (self.high_risk_until is None or day <= self.high_risk_until)


def parse_declaration(data: Any, source: str = "declaration") -> Declaration:
    """Validate raw input into a Declaration, or raise InputError naming the field."""
    try:
        return Declaration.model_validate(data)
    except ValidationError as err:
        raise describe(source, err) from None


def _prefix(n: int) -> Callable[[Any], Any]:
    """The first n characters of a code, or of every code in a pandas Series."""
    return lambda code: code.str[:n] if hasattr(code, "str") else code[:n]


def _ratio(a: Any, b: Any) -> Any:
    return a / b


@dataclass(frozen=True)
class Derivation:
    """A field computed from others: one definition for a Declaration and for a frame of them."""

    inputs: tuple[str, ...]
    compute: Callable[..., Any]

    def __call__(self, *values: Any) -> Any:
        return self.compute(*values)


DERIVED: dict[str, Derivation] = {
    "hs_chapter": Derivation(("hs_code",), _prefix(2)),
    "hs_heading": Derivation(("hs_code",), _prefix(4)),
    "unit_value": Derivation(("declared_value", "quantity"), _ratio),
    "value_per_kg": Derivation(("declared_value", "net_mass_kg"), _ratio),
}


@dataclass(frozen=True)
class RuleField:
    """A field the rules may read: its kind ('str' takes string comparisons and prefix, 'num' numeric
    ones, 'bool' only eq/ne) and how the live engine reads it from one declaration and its enterprise."""

    kind: Literal["str", "num", "bool"]
    read: Callable[[Declaration, Enterprise], Any]


def _attribute(name: str) -> Callable[[Declaration, Enterprise], Any]:
    return lambda d, e: getattr(d, name)


# The one registry of rule fields: it drives rule validation (kinds), the live record (rule_fields),
# and, through DERIVED and the `enterprise.` prefix, the simulation's vectorised frame.
FIELDS: dict[str, RuleField] = {
    **{
        name: RuleField("str", _attribute(name))
        for name in (
            "id",
            "enterprise_id",
            "hs_code",
            "hs_chapter",
            "hs_heading",
            "origin_country",
            "departure_country",
            "trade_mode",
            "transport_mode",
            "customs_office",
        )
    },
    "declared_date": RuleField("str", lambda d, e: d.declared_at.date().isoformat()),
    **{
        name: RuleField("num", _attribute(name))
        for name in ("declared_value", "net_mass_kg", "quantity", "unit_value", "value_per_kg", "items")
    },
    "enterprise.credit_class": RuleField("str", lambda d, e: e.credit_class.value),
    "enterprise.high_risk": RuleField("bool", lambda d, e: e.high_risk_on(d.declared_at.date())),
    "enterprise.declarations": RuleField("num", lambda d, e: e.declarations),
    "enterprise.inspections": RuleField("num", lambda d, e: e.inspections),
    "enterprise.problems": RuleField("num", lambda d, e: e.problems),
}
RULE_FIELDS: dict[str, str] = {name: f.kind for name, f in FIELDS.items()}
ENTERPRISE_FIELDS = [name for name in FIELDS if name.startswith("enterprise.")]


def rule_fields(
    declaration: Declaration, enterprise: Enterprise, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """The flat record rules are evaluated on: declaration fields plus `enterprise.*` fields (only
    `names`, where given: a rules file reads a few of them, and reading each costs)."""
    wanted = FIELDS if names is None else {name: FIELDS[name] for name in names}
    return {name: f.read(declaration, enterprise) for name, f in wanted.items()}


def read_enterprises_csv(path: str) -> dict[str, Enterprise]:
    """Enterprise records from a CSV with an `id` column and any of Enterprise's other fields."""
    out: dict[str, Enterprise] = {}
    for line, row in read_csv(path, "enterprises file"):
        where = f"{path}:{line}"
        clean = {k: v for k, v in row.items() if k and v not in ("", None)}
        try:
            enterprise = Enterprise.model_validate(clean)
        except ValidationError as err:
            raise describe(where, err) from None
        if enterprise.id in out:
            raise InputError(f"{where}: enterprise {enterprise.id!r} is listed twice; one row per enterprise")
        out[enterprise.id] = enterprise
    return out
