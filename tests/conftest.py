"""Shared fixtures: paths into the repository and a factory for valid declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASELINE_RULES = ROOT / "scenarios" / "rules" / "baseline.yaml"


def declaration_data(**overrides) -> dict:
    """A valid declaration as raw JSON-like data; override any field."""
    data = {
        "id": "D1", "declared_at": "2026-06-01T09:30:00", "enterprise_id": "E1", "hs_code": "610910",
        "origin_country": "VN", "departure_country": "VN", "trade_mode": "general",
        "transport_mode": "sea", "customs_office": "OFF-40", "declared_value": 12000.0,
        "net_mass_kg": 1000.0, "quantity": 4000.0,
    }
    data.update(overrides)
    return data


@pytest.fixture
def root() -> Path:
    return ROOT
