"""The store simulator: a seeded, believable shop and the feeds that send it to the platform.

Generation (`store`, `sessions`, `replay`) is pure and reproducible — the same seed gives the same
catalog and the same event stream, event ids included. `feed` is the one module that talks to
Kafka and MongoDB:

    store = build_store(StoreConfig(seed=42, products=500, categories=12, users=2000))
    load_catalog(settings, store)
    send_history(settings, store, days=60, progress=print_progress)
    run_live(settings, store, rate=20, stop=threading.Event())
"""

from recsys_simulator.feed import load_catalog, replay_file, run_live, send_history
from recsys_simulator.sessions import history_events, live_events
from recsys_simulator.store import Product, Shopper, Store, StoreConfig, StoreConfigError, build_store
from recsys_simulator.tally import EventTally

__all__ = [
    "EventTally",
    "Product",
    "Shopper",
    "Store",
    "StoreConfig",
    "StoreConfigError",
    "build_store",
    "history_events",
    "live_events",
    "load_catalog",
    "replay_file",
    "run_live",
    "send_history",
]
