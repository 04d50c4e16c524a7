"""Indicator computation: the seeded catalogue, the query engine, the statistics."""
