"""The `recsys` command: one entry point for operating the platform (composition root)."""
