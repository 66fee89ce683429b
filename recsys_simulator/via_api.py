"""The simulator's calls to the API, as a shop's backend and storefront would make them.

The catalog through `PUT /v1/products`: slower than the direct path (`feed.load_catalog`) but the
same route real shops use; products are sent in batches, and the API validates each batch whole.
Shoppers' recommendations through `GET /v1/users/{id}/recommendations`, which live traffic reacts
to (`recsys_simulator.reactions`), so that every list it clicks was served and recorded.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, OrderedDict
from typing import Any

from recsys_core.errors import RecsysError, ServerUnavailable
from recsys_simulator.reactions import ServedList
from recsys_simulator.store import Store

BATCH = 1_000
TIMEOUT_SECONDS = 30
# A shopper's list is read while traffic is paced: a slow API must not stall the feed.
LIST_TIMEOUT_SECONDS = 2
LIST_LENGTH = 10
# Lists remembered to name the arm of a later click; a click on an older list counts as unknown.
LISTS_REMEMBERED = 100_000


class ApiRefused(RecsysError):
    """The API answered a catalog upsert with an error."""


def _put(url: str, body: list[dict[str, Any]], api_key: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **({"X-API-Key": api_key} if api_key else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = error.reason
        raise ApiRefused(f"PUT {url} answered {error.code}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ServerUnavailable("the API", url, f"start it with `recsys api` ({error})") from None


def load_catalog_via_api(api_url: str, store: Store, api_key: str | None = None) -> int:
    """Upsert every product with `PUT {api_url}/v1/products`; returns how many the API accepted."""
    url = api_url.rstrip("/") + "/v1/products"
    records = [p.catalog_record() for p in store.products]
    return sum(_put(url, records[i : i + BATCH], api_key)["upserted"] for i in range(0, len(records), BATCH))


class ServedLists:
    """Shoppers' recommendations as the API serves them now, and what the shoppers did with them:
    lists, products shown and clicks per arm (the experiment's variant, else the strategy).

    A failed read (API down, 503) serves the visit no list and is counted, never raised: live
    traffic goes on without its reactions until the API is back.
    """

    def __init__(self, api_url: str, read_key: str | None = None):
        self.base = api_url.rstrip("/")
        self.headers = {"Accept": "application/json", **({"X-API-Key": read_key} if read_key else {})}
        self.arms: OrderedDict[str, str] = OrderedDict()  # rec_id -> arm
        self.lists: Counter[str] = Counter()
        self.shown: Counter[str] = Counter()
        self.clicks: Counter[str] = Counter()
        self.failed = 0
        self.last_error: str | None = None

    def __call__(self, user_id: str) -> ServedList | None:
        url = f"{self.base}/v1/users/{urllib.parse.quote(user_id, safe='')}/recommendations?limit={LIST_LENGTH}"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=self.headers), timeout=LIST_TIMEOUT_SECONDS
            ) as r:
                body = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.failed += 1
            self.last_error = f"GET {url}: {error}"
            return None
        arm = str(body.get("variant") or body.get("strategy") or "unknown")
        served = ServedList(rec_id=str(body["rec_id"]), products=tuple(body.get("products") or ()), arm=arm)
        self.arms[served.rec_id] = arm
        if len(self.arms) > LISTS_REMEMBERED:
            self.arms.popitem(last=False)
        self.lists[arm] += 1
        self.shown[arm] += len(served.products)
        return served

    def note(self, event: dict[str, Any]) -> None:
        """Count a sent event that clicks a list."""
        if event["type"] == "click":
            self.clicks[self.arms.get(event["rec_id"], "unknown")] += 1

    def summary(self) -> str:
        """Per arm: lists, products shown, clicks and click-through rate (clicks / products shown)."""
        arms = [
            f"{arm} {self.lists[arm]:,} lists, {self.shown[arm]:,} shown, {self.clicks[arm]:,} clicks, "
            f"ctr {100 * self.clicks[arm] / self.shown[arm] if self.shown[arm] else 0:.1f} %"
            for arm in sorted(self.lists)
        ]
        failed = f"; {self.failed:,} reads failed ({self.last_error})" if self.failed else ""
        return "served: " + ("; ".join(arms) or "no list yet") + failed
