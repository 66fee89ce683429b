"""recsys domain: event schemas, settings, ranking rules and the one way to reach each server."""
