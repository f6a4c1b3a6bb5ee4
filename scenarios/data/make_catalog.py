"""Regenerate catalog.csv and search_terms.txt (deterministic: same files every time).

The sandbox seeds its storefront from catalog.csv, and the scenarios pick SKUs,
categories and search terms from the same files, so both sides agree by construction.
Run: ``python scenarios/data/make_catalog.py``.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATEGORIES = ["shoes", "sneakers", "boots", "sandals", "kids", "sports", "accessories", "outlet"]
ADJECTIVES = ["classic", "trail", "urban", "light", "waterproof", "leather", "canvas", "retro",
              "summer", "winter", "running", "comfort", "slim", "high-top", "low-top", "vegan"]
NOUNS = {
    "shoes": ["loafer", "oxford", "derby", "pump", "brogue"],
    "sneakers": ["runner", "court", "skate", "trainer", "knit"],
    "boots": ["chelsea", "hiker", "ankle boot", "work boot", "snow boot"],
    "sandals": ["slide", "flip-flop", "espadrille", "strap sandal", "clog"],
    "kids": ["school shoe", "kids sneaker", "rain boot", "first walker", "kids sandal"],
    "sports": ["football boot", "tennis shoe", "trail runner", "court shoe", "spike"],
    "accessories": ["sock pack", "insole", "shoe care kit", "lace set", "shoe bag"],
    "outlet": ["last-season runner", "sample boot", "clearance loafer", "outlet sneaker",
               "end-of-line sandal"],
}
COLOURS = ["black", "white", "navy", "red", "tan", "grey", "green", "pink"]
N_REGULAR = 3000
N_FLASH = 10


def rows() -> list[dict[str, object]]:
    rng = random.Random(20261127)
    out: list[dict[str, object]] = []
    for i in range(1, N_REGULAR + 1):
        category = CATEGORIES[(i - 1) % len(CATEGORIES)]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(COLOURS)} {rng.choice(NOUNS[category])}"
        out.append({"sku": f"SKU-{i:05d}", "name": name, "category": category,
                    "price": f"{rng.randint(900, 24900) / 100:.2f}",
                    "stock": rng.randint(50, 500), "flash_sale": 0})
    for i in range(1, N_FLASH + 1):
        category = CATEGORIES[(i - 1) % len(CATEGORIES)]
        out.append({"sku": f"SKU-{90000 + i:05d}",
                    "name": f"flash deal {rng.choice(COLOURS)} {rng.choice(NOUNS[category])}",
                    "category": category, "price": f"{rng.randint(900, 4900) / 100:.2f}",
                    "stock": rng.randint(20, 60), "flash_sale": 1})
    return out


def search_terms() -> list[str]:
    words = sorted({w for nouns in NOUNS.values() for n in nouns for w in n.split()}
                   | set(ADJECTIVES) | set(COLOURS) | set(CATEGORIES))
    return words


def main() -> None:
    with (HERE / "catalog.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sku", "name", "category", "price", "stock",
                                                "flash_sale"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows())
    (HERE / "search_terms.txt").write_text("\n".join(search_terms()) + "\n")


if __name__ == "__main__":
    main()
