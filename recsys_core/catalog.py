"""Catalog items: the one validation of a product sent by the shop, whoever receives it.

`parse_product` turns a client's item into the canonical product dict, the value travelling on
`recsys.catalog` and the body of a `products` document (see recsys_core/documents.py):

    {"product_id": str, "category_id": str, "name": str | None, "description": str | None,
     "price": float >= 0 | None, "attributes": {str: JSON} | None}

An upsert replaces the whole product: a field left out is stored as null, so the compacted
topic's latest record and the document always describe the same product.
"""

from __future__ import annotations

import math
from typing import Any

from recsys_core.events import FieldError, InvalidEvent, _Checker

MAX_CATALOG_BATCH = 10_000
MAX_NAME_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 20_000
MAX_ATTRIBUTE_DEPTH = 10


class InvalidProduct(InvalidEvent):
    """A catalog item with one or more wrong fields (`errors`: [FieldError])."""


def _text(checker: _Checker, field: str, value: Any, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        checker.fail(field, "expected a string")
    elif len(value) > max_length:
        checker.fail(field, f"must be at most {max_length} characters")
    else:
        return value
    return None


def _attribute_problem(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value cannot be stored as a document field as it is (MongoDB's rules), or None."""
    if depth > MAX_ATTRIBUTE_DEPTH:
        return f"nested deeper than {MAX_ATTRIBUTE_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "." in key or "\x00" in key:
                return f"names may not start with '$' or contain '.' or NUL ({key!r})"
            if problem := _attribute_problem(item, depth + 1):
                return problem
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, list):
                # FerretDB 1.24, the local document store, cannot store arrays of arrays.
                return "a list may not directly hold another list"
            if problem := _attribute_problem(item, depth + 1):
                return problem
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return "whole numbers must fit in 64 bits"
    elif isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    return None


def parse_product(raw: Any) -> dict[str, Any]:
    """Validate one catalog item and return its canonical dict; raise InvalidProduct with every problem."""
    if not isinstance(raw, dict):
        raise InvalidProduct([FieldError("", "a product must be a JSON object")])
    checker = _Checker(raw)
    attributes = raw.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        checker.fail("attributes", "expected an object")
        attributes = None
    elif attributes is not None and (problem := _attribute_problem(attributes)):
        checker.fail("attributes", problem)
        attributes = None
    product = {
        "product_id": checker.identifier("product_id", raw.get("product_id")),
        "category_id": checker.identifier("category_id", raw.get("category_id")),
        "name": _text(checker, "name", raw.get("name"), MAX_NAME_LENGTH),
        "description": _text(checker, "description", raw.get("description"), MAX_DESCRIPTION_LENGTH),
        "price": checker.price("price", raw.get("price")),
        "attributes": attributes,
    }
    if checker.errors:
        raise InvalidProduct(checker.errors)
    return product


def parse_catalog(raws: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All-or-nothing helper: (products, errors) where errors carry each bad item's index.

    A product listed twice keeps its last version, as the compacted topic would.
    """
    products: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            product = parse_product(raw)
        except InvalidProduct as error:
            errors.extend({"index": index, **e.as_dict()} for e in error.errors)
        else:
            products.pop(product["product_id"], None)
            products[product["product_id"]] = product
    return list(products.values()), errors
