"""Make the shipped inputs from the Korean synthetic declaration data set (MIT, IBS/KCS).

scenarios/goods/kcs_mix.csv: 5,000 goods lines drawn from all 54,000 rows, the default goods mix the
simulation bootstraps declarations from (HS code, origins, transport, mass, value, quantity).

scenarios/declarations/: draws 1,000 rows from df_syn_test_eng.csv (Apr-Jun 2021), moves them to 2026 so the
baseline
campaign rule applies, converts KRW to USD (prices read as thousands of KRW), and maps the codes onto our
Declaration fields.
Run from the repository root:  python tools/make_sample_declarations.py
../shared/data/customs-declaration-datasets
"""

import csv
import json
import random
import sys
from pathlib import Path

KRW_PER_USD = 1300.0
PRICE_UNIT_KRW = 1000.0  # Item Price read as thousands of KRW: gives a realistic median declaration (~USD 8k)
TRANSPORT = {"10": "sea", "40": "air", "50": "post", "20": "rail", "30": "road"}
TRADE_MODES = ["general"] * 8 + ["processing", "bonded", "ecommerce"]
OUT = Path("scenarios/declarations")


def declaration(row: dict, rng: random.Random) -> dict:
    mass = max(float(row["Net Mass"]), 0.1)
    vehicles = row["HS6 Code"].startswith("87")
    return {
        "id": "KR" + row["Declaration ID"],
        "declared_at": f"2026{row['Date'][4:]}T{rng.randint(7, 20):02d}:{rng.randint(0, 59):02d}:00",
        "enterprise_id": "IMP-" + row["Importer ID"],
        "hs_code": row["HS6 Code"].zfill(6),
        "origin_country": row["Country of Origin"],
        "departure_country": row["Country of Departure"],
        "trade_mode": rng.choice(TRADE_MODES),
        "transport_mode": TRANSPORT.get(row["Mode of Transport"], "other"),
        "customs_office": "OFF-" + row["Office ID"],
        "declared_value": max(round(float(row["Item Price"]) * PRICE_UNIT_KRW / KRW_PER_USD, 2), 1.0),
        "net_mass_kg": mass,
        "quantity": max(1.0, round(mass / 1500)) if vehicles else round(mass, 1),
    }


GOODS_COLUMNS = [
    "hs_code",
    "origin_country",
    "departure_country",
    "transport_mode",
    "net_mass_kg",
    "declared_value",
    "quantity",
]


def write_goods_mix(data_dir: str, rng: random.Random) -> None:
    rows = []
    for split in ("train", "valid", "test"):
        with open(Path(data_dir) / f"df_syn_{split}_eng.csv", newline="") as handle:
            rows += [
                r
                for r in csv.DictReader(handle)
                if len(r["Country of Origin"]) == 2 and len(r["Country of Departure"]) == 2
            ]
    out = Path("scenarios/goods")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "kcs_mix.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GOODS_COLUMNS)
        for row in rng.sample(rows, 5000):
            d = declaration(row, rng)
            writer.writerow([d[c] for c in GOODS_COLUMNS])


def main(data_dir: str) -> None:
    write_goods_mix(data_dir, random.Random(7))
    rng = random.Random(2026)
    with open(Path(data_dir) / "df_syn_test_eng.csv", newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if len(r["Country of Origin"]) == 2 and len(r["Country of Departure"]) == 2
        ]
    sample = sorted(rng.sample(rows, 1000), key=lambda r: (r["Date"], r["Declaration ID"]))
    decls = [declaration(r, rng) for r in sample]
    decls.sort(key=lambda d: d["declared_at"])
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "sample.jsonl", "w") as out:
        out.writelines(json.dumps(d) + "\n" for d in decls)
    firms = sorted({d["enterprise_id"] for d in decls})
    standing = ["dishonest"] * 15 + ["advanced_certified"] * 60 + ["general_certified"] * 120
    with open(OUT / "enterprises.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["id", "credit_class", "high_risk", "high_risk_until", "declarations", "inspections", "problems"]
        )
        for i, firm in enumerate(rng.sample(firms, len(firms))):
            credit = standing[i] if i < len(standing) else "general"
            high = len(standing) <= i < len(standing) + 25  # caught recently
            history = 0 if rng.random() < 0.03 else rng.randint(1, 400)  # a few newcomers
            writer.writerow(
                [
                    firm,
                    credit,
                    str(high).lower(),
                    "2026-12-31" if high else "",
                    history,
                    min(history, rng.randint(0, 20)),
                    1 if high else 0,
                ]
            )


if __name__ == "__main__":
    main(sys.argv[1])
