"""Litestar API: collects shoppers' events and catalog, serves precomputed lists from MongoDB."""
