"""Reading user-item interaction files for offline evaluation (`recsys evaluate`, the benchmark).

    csv        header with user_id, item_id and optionally weight or rating, and timestamp
    movielens  tab-separated `user item rating timestamp` (ml-100k's u.data), or RecBole's `.inter`
               whose header names the columns (`user_id:token  item_id:token  rating:float ...`)

A rating or weight becomes the interaction's weight (1 when absent); a repeated pair keeps the
sum of its weights and its latest timestamp.

Purchases for the evaluation that counts repeats (`recsys evaluate --repeats`) are read line by
line, nothing merged: a CSV with header user_id, item_id, timestamp and optionally order_id (a
line without an order id belongs to the shopper's order at its timestamp, recsys_core.repeats).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from recsys_core.errors import RecsysError
from recsys_core.metrics import Interaction
from recsys_core.repeats import Purchase

FORMATS = ("csv", "movielens")


class BadInteractionFile(RecsysError):
    pass


def _merge(rows: Iterable[tuple[str, str, float, float]]) -> list[Interaction]:
    merged: dict[tuple[str, str], Interaction] = {}
    for user, item, weight, ts in rows:
        old = merged.get((user, item))
        merged[(user, item)] = Interaction(
            user, item, weight + (old.weight if old else 0.0), max(ts, old.ts) if old else ts
        )
    return list(merged.values())


def _number(value: str | None, default: float, where: str) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise BadInteractionFile(f"{where}: {value!r} is not a number") from None


def parse_csv(text: str, source: str = "input") -> list[Interaction]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if not {"user_id", "item_id"} <= columns:
        raise BadInteractionFile(f"{source}: the header needs user_id and item_id (found {sorted(columns)})")
    weight_column = "weight" if "weight" in columns else "rating" if "rating" in columns else None
    rows = []
    for line, row in enumerate(reader, start=2):
        where = f"{source} line {line}"
        if not row["user_id"] or not row["item_id"]:
            raise BadInteractionFile(f"{where}: user_id and item_id must not be empty")
        rows.append(
            (
                row["user_id"],
                row["item_id"],
                _number(row.get(weight_column) if weight_column else None, 1.0, where),
                _number(row.get("timestamp"), 0.0, where),
            )
        )
    return _merge(rows)


def parse_movielens(text: str, source: str = "input") -> list[Interaction]:
    lines = text.splitlines()
    columns = ["user_id", "item_id", "rating", "timestamp"]
    if lines and ":" in lines[0]:  # RecBole's .inter header, e.g. "user_id:token\titem_id:token\t..."
        columns = [c.split(":")[0] for c in lines[0].split("\t")]
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        values = dict(zip(columns, line.split("\t"), strict=False))
        where = f"{source} line {number}"
        if not values.get("user_id") or not values.get("item_id"):
            raise BadInteractionFile(f"{where}: expected user, item, rating and timestamp separated by tabs")
        rows.append(
            (
                values["user_id"],
                values["item_id"],
                _number(values.get("rating"), 1.0, where),
                _number(values.get("timestamp"), 0.0, where),
            )
        )
    return _merge(rows)


def parse_purchases(text: str, source: str = "input") -> list[Purchase]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if not {"user_id", "item_id", "timestamp"} <= columns:
        raise BadInteractionFile(
            f"{source}: the header needs user_id, item_id and timestamp, order_id optional (found {sorted(columns)})"
        )
    rows = []
    for line, row in enumerate(reader, start=2):
        where = f"{source} line {line}"
        if not row["user_id"] or not row["item_id"] or not row["timestamp"]:
            raise BadInteractionFile(f"{where}: user_id, item_id and timestamp must not be empty")
        ts = _number(row["timestamp"], 0.0, where)
        rows.append(Purchase(row["user_id"], row["item_id"], row.get("order_id") or "", ts))
    return rows


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BadInteractionFile(f"cannot read {path}: {error.strerror}") from None


def read_interactions(path: Path, fmt: str = "csv") -> list[Interaction]:
    if fmt not in FORMATS:
        raise BadInteractionFile(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    text = _read_text(path)
    parsed = parse_csv(text, str(path)) if fmt == "csv" else parse_movielens(text, str(path))
    if not parsed:
        raise BadInteractionFile(f"{path} holds no interactions")
    return parsed


def read_purchases(path: Path) -> list[Purchase]:
    parsed = parse_purchases(_read_text(path), str(path))
    if not parsed:
        raise BadInteractionFile(f"{path} holds no purchases")
    return parsed
