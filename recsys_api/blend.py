"""The weight a shopper's buy_again list is blended into their recommendations at.

RECSYS_BUY_AGAIN_WEIGHT, when set, is the weight; unset, the one the buy_again_weight asset chose
on the shop's orders and recorded in the `blend_weights` collection, else 0
(recsys_core.repeats.served_weight). The record is read at most every BLEND_WEIGHT_TTL_SECONDS per
process, so a list costs no extra read for it; it changes once a day. A store that does not
answer that read keeps the weight last read (0 before any): the weight never fails a list.
"""

from __future__ import annotations

import logging

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from recsys_api.held import Held
from recsys_core.repeats import BUY_AGAIN, served_weight
from recsys_io.mongo import BLEND_WEIGHTS

BLEND_WEIGHT_TTL_SECONDS = 5.0

log = logging.getLogger(__name__)


async def _recorded(db: AsyncDatabase, last: float | None) -> float | None:
    try:
        doc = await db[BLEND_WEIGHTS].find_one({"_id": BUY_AGAIN}, {"weight": 1})
    except PyMongoError as error:
        log.warning("the buy_again blend weight could not be read, serving %s meanwhile: %s", last or 0, error)
        return last
    return None if doc is None else float(doc["weight"])


_recorded_weight = Held(_recorded, BLEND_WEIGHT_TTL_SECONDS)


async def buy_again_weight(db: AsyncDatabase, setting: float | None) -> float:
    """The weight to blend at: `setting` (RECSYS_BUY_AGAIN_WEIGHT) when set, without any read."""
    if setting is not None:
        return served_weight(setting, None)
    return served_weight(None, await _recorded_weight.get(db))
