"""The seed catalog: ``scenarios/data/catalog.csv`` when present (the scenarios pick SKUs
from the same file), else the same convention generated deterministically."""

from __future__ import annotations

import csv
import random
from pathlib import Path

CATEGORIES = ["shoes", "sneakers", "boots", "sandals", "kids", "sports", "accessories", "outlet"]
COLUMNS = ["sku", "name", "category", "price", "stock", "flash_sale"]
REPO_CATALOG = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "catalog.csv"


def load(path: Path | None = None) -> list[tuple]:
    """Rows ``(sku, name, category, price, stock, flash_sale)`` ready for COPY."""
    path = path or REPO_CATALOG
    if path.exists():
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(COLUMNS) - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            return [
                (r["sku"], r["name"], r["category"], r["price"], int(r["stock"]),
                 r["flash_sale"].strip().lower() in ("1", "true", "yes"))
                for r in reader
            ]
    return generated()


def generated(n_regular: int = 3000, n_flash: int = 10) -> list[tuple]:
    rng = random.Random(42)
    colours = ["black", "white", "navy", "red", "tan", "grey", "green", "pink"]
    styles = ["classic", "trail", "urban", "light", "waterproof", "leather", "retro"]
    rows = []
    for i in range(1, n_regular + 1):
        cat = CATEGORIES[(i - 1) % len(CATEGORIES)]
        name = f"{rng.choice(styles)} {rng.choice(colours)} {cat}"
        rows.append((f"SKU-{i:05d}", name, cat, f"{rng.uniform(15, 250):.2f}",
                     rng.randint(20, 500), False))
    for i in range(1, n_flash + 1):
        cat = CATEGORIES[(i - 1) % len(CATEGORIES)]
        rows.append((f"SKU-{90000 + i}", f"flash deal {rng.choice(colours)} {cat}", cat,
                     f"{rng.uniform(15, 50):.2f}", rng.randint(20, 50), True))
    return rows
