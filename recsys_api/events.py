"""POST /v1/events: shoppers' events into Kafka, acknowledged only once the broker has them all."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, post
from litestar.openapi.spec import Example
from litestar.params import Body

from recsys_api.auth import SECURITY
from recsys_api.errors import ApiError, InvalidInput, documented
from recsys_api.publisher import Publisher
from recsys_api.schemas import EventsAccepted, events_body_schema
from recsys_core.events import IMPRESSION, MAX_BATCH, parse_batch
from recsys_core.settings import Settings

MAX_EVENTS_BODY = 1024 * 1024

EVENTS_BODY = Body(
    title='One event, or a batch {"events": [...]}',
    description=(
        'Either one event object or `{"events": [event, ...]}` with 1 to 1,000 events. '
        "Event types: product_view {product_id, source?}, add_to_cart {product_id, quantity >= 1}, "
        "purchase {order_id, items: [{product_id, quantity >= 1, price >= 0?}]}, "
        "rating {product_id, score 0.5..5 in steps of 0.5}, click {product_id, rec_id: the served list's} "
        "(an `impression` is the API's own and answers 400); all with type, user_id (1-128 chars), "
        "event_id (UUID, optional: generated; the same id twice is one event downstream), ts "
        "(ISO-8601 with zone, optional: now; at most 5 minutes ahead, not before RECSYS_EVENTS_START_DATE). "
        "The clickstream format "
        '{event: "ProductView", messageid, userid, properties: {productid}, context: {source}, '
        "timestamp?} is accepted and normalised to product_view."
    ),
    schema_extra=events_body_schema(),
    examples=[
        Example(summary="one view", value={"type": "product_view", "user_id": "u1", "product_id": "p1"}),
        Example(
            summary="a batch",
            value={
                "events": [
                    {"type": "add_to_cart", "user_id": "u1", "product_id": "p1", "quantity": 2},
                    {
                        "type": "purchase",
                        "user_id": "u1",
                        "order_id": "o1",
                        "items": [{"product_id": "p1", "quantity": 2, "price": 9.5}],
                    },
                    {"type": "rating", "user_id": "u1", "product_id": "p1", "score": 4.5},
                ]
            },
        ),
    ],
)


def _batch(data: dict[str, Any]) -> list[Any]:
    if "events" not in data:
        return [data]
    events = data["events"]
    if not isinstance(events, list) or not events:
        raise InvalidInput(
            "`events` must be a list of 1 to 1,000 events",
            [{"field": "events", "reason": "expected a non-empty list of events"}],
        )
    if len(events) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH} events per request",
            [{"field": "events", "reason": f"{len(events)} events; at most {MAX_BATCH}"}],
        )
    return events


def _refuse_impressions(raws: list[Any]) -> None:
    """Impressions are the API's own record of what it served: one sent by a client would count
    lists nobody was shown."""
    posted = [i for i, raw in enumerate(raws) if isinstance(raw, dict) and raw.get("type") == IMPRESSION]
    if posted:
        raise ApiError(
            "impressions are recorded by the API for every list it serves; clients may not send them",
            [{"index": i, "field": "type", "reason": "impression is not a client event"} for i in posted],
        )


class EventsController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @post(
        status_code=202,
        security=SECURITY,
        request_max_body_size=MAX_EVENTS_BODY,
        responses=documented(400, 401, 413, 422, 503),
        summary="Collect shoppers' events (all-or-nothing)",
    )
    async def collect(
        self, data: Annotated[dict[str, Any], EVENTS_BODY], publisher: Publisher, settings: Settings
    ) -> EventsAccepted:
        """Validate every event, write them to the events topic keyed by user_id, answer once all are acknowledged.

        If any event is invalid, nothing is written and the 422 lists each problem with the
        event's index. If Kafka does not acknowledge within RECSYS_API_PRODUCE_TIMEOUT_SECONDS the
        answer is 503: resend the same events (with their event ids) later.
        """
        raws = _batch(data)
        _refuse_impressions(raws)
        events, errors = parse_batch(raws, first_day=settings.events_first_day)
        if errors:
            bad = len({e["index"] for e in errors})
            raise InvalidInput(f"{bad} of {len(raws)} events are invalid; nothing was accepted", errors)
        await publisher.publish(publisher.topics.events, [(e["user_id"], msgspec.json.encode(e)) for e in events])
        return EventsAccepted(accepted=len(events), event_ids=[e["event_id"] for e in events])
