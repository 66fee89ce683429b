"""Dagster code location: the batch layer (raw events in Delta, bestsellers, ALS model, serving docs)."""
