"""Shoppers' events: the one validation used by the API, the streaming job and the batch layer.

`parse_event` turns whatever a client sent (the platform's own format or the clickstream format of
existing replay producers) into one canonical dict, or raises `InvalidEvent` listing every field
that is wrong and why. Every caller passes the lake's first day (RECSYS_EVENTS_START_DATE,
`Settings.events_first_day`): an event the lake has no daily partition for, before that day or more
than `MAX_FUTURE` ahead, is refused here, so each layer says so (422, dead letter, quarantine)
instead of one of them losing it. The canonical form is what travels on `recsys.events`:

    {"event_id": uuid str, "type": ..., "user_id": str, "ts": "2026-11-22T04:00:00.123Z", ...type fields}

    product_view    product_id, source (optional, may be null)
    add_to_cart     product_id, quantity >= 1
    purchase        order_id, items: [{product_id, quantity >= 1, price >= 0 or null}] (>= 1 item)
    rating          product_id, score in 0.5 .. 5 in steps of 0.5
    history_delete  product_id (produced by the API when a shopper deletes a history entry)
    click           product_id, rec_id (the served list the product was clicked in; a list older
                    than the lake, or unknown, is still a click)
    user_erasure    nothing more (produced by the API and `recsys erase` when a shopper is erased:
                    every layer deletes what it holds of them older than `ts`, recsys_core.erasure)
    impression      rec_id, surface, strategy, model_version, experiment, variant (null when none),
                    products: [product_id] in the order shown; user_id null for lists of the whole
                    shop (produced by the API for every list it serves, never by a client)

Clicks and impressions are feedback on served lists: kept in the lake, but they change no
history, purchase or interaction strength (`changes_shopper_state`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

EVENT_TYPES = (
    "product_view",
    "add_to_cart",
    "purchase",
    "rating",
    "history_delete",
    "click",
    "impression",
    "user_erasure",
)
CLIENT_EVENT_TYPES = ("product_view", "add_to_cart", "purchase", "rating", "click")
LIST_FEEDBACK_TYPES = frozenset(("click", "impression"))
USER_ERASURE = "user_erasure"
IMPRESSION = "impression"
IMPRESSION_FIELDS = ("surface", "strategy", "model_version", "experiment", "variant")
MAX_LIST_LENGTH = 1000
MAX_USER_ID_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_FUTURE = timedelta(minutes=5)
MAX_BATCH = 1000
# Where each accepted format keeps the shopper's id and the event's time: the canonical event,
# then the clickstream's ProductView. The erasure finds an erased shopper's records as they came
# by these (recsys_assets.erasures).
USER_ID_FIELDS = ("user_id", "userid")
TS_FIELDS = ("ts", "timestamp")
_CLICKSTREAM_USER, _CLICKSTREAM_TS = USER_ID_FIELDS[1], TS_FIELDS[1]


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidEvent(ValueError):
    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))


def format_ts(ts: datetime) -> str:
    """Canonical timestamp: UTC, millisecond precision (truncated), `Z` suffix (sorts as text)."""
    # isoformat costs a third of strftime's, and every served list's impression formats one.
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z"


def parse_ts(value: Any, field: str = "ts", *, allow_epoch: bool = False) -> datetime:
    """ISO-8601 with a zone (or epoch seconds where the format allows it) -> aware UTC datetime."""
    if allow_epoch and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < 1e11:
            raise InvalidEvent([FieldError(field, "epoch seconds out of range")])
        return datetime.fromtimestamp(value, UTC)
    if allow_epoch and isinstance(value, str) and value.replace(".", "", 1).isdigit():
        return parse_ts(float(value), field, allow_epoch=True)
    if not isinstance(value, str):
        raise InvalidEvent([FieldError(field, "expected an ISO-8601 timestamp string with a time zone")])
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise InvalidEvent([FieldError(field, f"{value!r} is not an ISO-8601 timestamp")]) from None
    if ts.tzinfo is None:
        raise InvalidEvent([FieldError(field, "timestamp needs a time zone (e.g. 'Z' or '+01:00')")])
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is a valid ISO date with no UTC instant
        raise InvalidEvent([FieldError(field, f"{value!r} is outside the range of dates")]) from None


def placement_problem(ts: datetime, now: datetime, first_day: date) -> str | None:
    """Why the lake could not place an event at `ts` in one of its daily partitions, or None.

    The partitions run from `first_day` (RECSYS_EVENTS_START_DATE) to tomorrow; the batch layer
    reads a day from Kafka starting MAX_FUTURE before it, so a later event would be missed too.
    """
    if ts < datetime.combine(first_day, time(), UTC):
        return (
            f"before RECSYS_EVENTS_START_DATE ({first_day.isoformat()}), the first day the lake keeps "
            "events for; such an event cannot be stored"
        )
    if ts - now > MAX_FUTURE:
        return "is more than 5 minutes in the future"
    return None


def as_datetime(value: datetime | str) -> datetime:
    """A timestamp as the platform holds it: a datetime (from BSON or Spark) as it is, canonical text parsed."""
    return value if isinstance(value, datetime) else parse_ts(value)


class _Checker:
    """Collects every problem of one event instead of stopping at the first."""

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw
        self.errors: list[FieldError] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def identifier(self, field: str, value: Any, max_length: int = MAX_ID_LENGTH) -> str | None:
        if value is None:
            self.fail(field, "is required")
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            self.fail(field, "expected a non-empty string")
        else:
            text = str(value).strip()
            if not text:
                self.fail(field, "must not be empty")
            elif len(text) > max_length:
                self.fail(field, f"must be at most {max_length} characters")
            else:
                return text
        return None

    def quantity(self, field: str, value: Any, default: int | None = None) -> int | None:
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            self.fail(field, "expected a whole number >= 1")
        elif value < 1:
            self.fail(field, "must be >= 1")
        else:
            return int(value)
        return None

    def price(self, field: str, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(field, "expected a number >= 0")
        elif value < 0:
            self.fail(field, "must be >= 0")
        else:
            return float(value)
        return None


def _event_id(checker: _Checker, value: Any) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        checker.fail("event_id", "expected a UUID")
        return ""


def _stable_id(message_id: Any) -> str:
    """Clickstream message ids are opaque strings: a UUID of their own, the same every replay."""
    if message_id is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(message_id)))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"clickstream:{message_id}"))


def _timestamp(
    checker: _Checker, raw_ts: Any, field: str, now: datetime, first_day: date, allow_epoch: bool = False
) -> str:
    ts = now
    if raw_ts is not None:
        try:
            ts = parse_ts(raw_ts, field, allow_epoch=allow_epoch)
        except InvalidEvent as error:
            checker.errors.extend(error.errors)
            return ""
    if problem := placement_problem(ts, now, first_day):
        checker.fail(field, problem)
    return format_ts(ts)


def _from_clickstream(raw: dict[str, Any], now: datetime, first_day: date) -> dict[str, Any]:
    """{"event": "ProductView", "messageid", "userid", "properties": {"productid"}, "context": {"source"}}"""
    checker = _Checker(raw)
    if raw.get("event") != "ProductView":
        checker.fail("event", "only 'ProductView' clickstream events are accepted")
    properties: dict[str, Any] = raw["properties"] if isinstance(raw.get("properties"), dict) else {}
    context: dict[str, Any] = raw["context"] if isinstance(raw.get("context"), dict) else {}
    source = context.get("source")
    event = {
        "event_id": _stable_id(raw.get("messageid")),
        "type": "product_view",
        "user_id": checker.identifier(_CLICKSTREAM_USER, raw.get(_CLICKSTREAM_USER), MAX_USER_ID_LENGTH),
        "ts": _timestamp(checker, raw.get(_CLICKSTREAM_TS), _CLICKSTREAM_TS, now, first_day, allow_epoch=True),
        "product_id": checker.identifier("properties.productid", properties.get("productid")),
        "source": str(source) if source is not None else None,
    }
    if checker.errors:
        raise InvalidEvent(checker.errors)
    return event


def parse_event(
    raw: Any, now: datetime | None = None, *, first_day: date, allow_internal: bool = False
) -> dict[str, Any]:
    """Validate one event and return its canonical dict; raise InvalidEvent with every problem.

    `first_day` is the lake's first day (`Settings.events_first_day`); `allow_internal` admits
    `history_delete`, `impression` and `user_erasure`, which only the platform itself produces.
    """
    now = now or datetime.now(UTC)
    if not isinstance(raw, dict):
        raise InvalidEvent([FieldError("", "an event must be a JSON object")])
    if "event" in raw and "type" not in raw:
        return _from_clickstream(raw, now, first_day)
    checker = _Checker(raw)
    event_type = raw.get("type")
    allowed = EVENT_TYPES if allow_internal else CLIENT_EVENT_TYPES
    if event_type not in allowed:
        checker.fail("type", f"expected one of {', '.join(allowed)}")
    event: dict[str, Any] = {
        "event_id": _event_id(checker, raw.get("event_id")),
        "type": event_type,
        "user_id": (
            None  # a list of the whole shop is shown to no one in particular
            if event_type == IMPRESSION and raw.get("user_id") is None
            else checker.identifier("user_id", raw.get("user_id"), MAX_USER_ID_LENGTH)
        ),
        "ts": _timestamp(checker, raw.get("ts"), "ts", now, first_day),
    }
    if event_type in ("product_view", "add_to_cart", "rating", "history_delete", "click"):
        event["product_id"] = checker.identifier("product_id", raw.get("product_id"))
    if event_type == "product_view":
        source = raw.get("source")
        if source is not None and not isinstance(source, str):
            checker.fail("source", "expected a string")
        event["source"] = source
    elif event_type == "click":
        event["rec_id"] = checker.identifier("rec_id", raw.get("rec_id"))
    elif event_type == IMPRESSION:
        _impression_fields(checker, raw, event)
    elif event_type == "add_to_cart":
        event["quantity"] = checker.quantity("quantity", raw.get("quantity"))
    elif event_type == "rating":
        score = raw.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            checker.fail("score", "expected a number from 0.5 to 5 in steps of 0.5")
        elif not 0.5 <= score <= 5 or score * 2 != int(score * 2):
            checker.fail("score", "must be from 0.5 to 5 in steps of 0.5")
        else:
            event["score"] = float(score)
    elif event_type == "purchase":
        event["order_id"] = checker.identifier("order_id", raw.get("order_id"))
        items = raw.get("items")
        if not isinstance(items, list) or not items:
            checker.fail("items", "expected a list of at least one item")
            items = []
        event["items"] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                checker.fail(f"items[{i}]", "expected an object")
                continue
            event["items"].append(
                {
                    "product_id": checker.identifier(f"items[{i}].product_id", item.get("product_id")),
                    "quantity": checker.quantity(f"items[{i}].quantity", item.get("quantity")),
                    "price": checker.price(f"items[{i}].price", item.get("price")),
                }
            )
    if checker.errors:
        raise InvalidEvent(checker.errors)
    return event


def _impression_fields(checker: _Checker, raw: dict[str, Any], event: dict[str, Any]) -> None:
    event["rec_id"] = checker.identifier("rec_id", raw.get("rec_id"))
    for name in IMPRESSION_FIELDS:
        value = raw.get(name)
        if value is None and name not in ("surface", "strategy"):
            event[name] = None
        else:
            event[name] = checker.identifier(name, value)
    products = raw.get("products")
    if not isinstance(products, list) or len(products) > MAX_LIST_LENGTH:
        checker.fail("products", f"expected a list of at most {MAX_LIST_LENGTH} product ids")
        products = []
    event["products"] = [checker.identifier(f"products[{i}]", p) for i, p in enumerate(products)]


def changes_shopper_state(event: Mapping[str, Any]) -> bool:
    """Whether an event changes what a shopper is served from (history, purchases, interactions).

    Clicks and impressions say what shoppers did with served lists: they are measured, never
    learnt from here, and a list served must not itself change the next list. An erasure removes
    the shopper's state rather than changing it (recsys_core.erasure).
    """
    return event["type"] not in LIST_FEEDBACK_TYPES and event["type"] != USER_ERASURE


def impression_event(
    rec_id: str,
    user_id: str | None,
    surface: str,
    strategy: str,
    products: list[str],
    model_version: str | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The canonical impression of a served list, built without `parse_event`'s checks: every
    value comes from the platform itself (tests hold that `parse_event` accepts it unchanged).

    Its event id is the list's `rec_id`: one list, one impression, however often it is resent.
    """
    return {
        "event_id": rec_id,
        "type": IMPRESSION,
        "user_id": user_id,
        "ts": format_ts(now or datetime.now(UTC)),
        "rec_id": rec_id,
        "surface": surface,
        "strategy": strategy,
        "model_version": model_version,
        "experiment": experiment,
        "variant": variant,
        "products": products,
    }


def parse_batch(
    raws: list[Any], now: datetime | None = None, *, first_day: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All-or-nothing helper: (events, errors) where errors carry each bad event's index."""
    now = now or datetime.now(UTC)
    events: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            events.append(parse_event(raw, now, first_day=first_day))
        except InvalidEvent as error:
            errors.extend({"index": index, **e.as_dict()} for e in error.errors)
    return events, errors


def history_delete_event(
    user_id: str, product_id: str, now: datetime | None = None, *, first_day: date
) -> dict[str, Any]:
    return parse_event(
        {
            "type": "history_delete",
            "user_id": user_id,
            "product_id": product_id,
            "ts": format_ts(now or datetime.now(UTC)),
        },
        now,
        first_day=first_day,
        allow_internal=True,
    )
