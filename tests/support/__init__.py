"""Helpers shared by the test modules: isolation on the shared test stack, seeding, reading back."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: README, Makefile, compose files
