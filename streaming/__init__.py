"""Spark Structured Streaming speed layer: keeps history and recommendations fresh in MongoDB."""
