"""Loading the simulated catalog through the API (`PUT /v1/products`), as a shop's backend would.

Slower than the direct path (`feed.load_catalog`) and needs the API running, but exercises the
same route real shops use. Products are sent in batches; the API validates each batch as a whole.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from recsys_core.errors import RecsysError, ServerUnavailable
from recsys_simulator.store import Store

BATCH = 1_000
TIMEOUT_SECONDS = 30


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
