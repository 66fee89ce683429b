"""Erasing a shopper from outside the API (`recsys erase`): the event first, then the documents."""

from __future__ import annotations

from typing import Any

from recsys_core.erasure import erasure_answer, user_erasure_event
from recsys_core.events import parse_ts
from recsys_core.settings import Settings
from recsys_io.kafka import send_and_wait
from recsys_io.mongo import erase_documents, mongo_client, require_mongo, serving_db


def erase_user(settings: Settings, user_id: str) -> dict[str, Any]:
    """What `DELETE /v1/users/{user_id}` does: publish the `user_erasure` event and wait for its
    acknowledgement, then delete the serving documents and record the erasure by the id's hash.

    Kafka or MongoDB down: ServerUnavailable, and nothing was deleted when it was Kafka.
    """
    event = user_erasure_event(user_id, first_day=settings.events_first_day)
    require_mongo(settings)
    send_and_wait(settings, settings.topics.events, event["user_id"], event)
    client = mongo_client(settings)
    try:
        erased = erase_documents(serving_db(client, settings), event["user_id"], parse_ts(event["ts"]))
    finally:
        client.close()
    return erasure_answer(event["user_id"], erased)
