"""The planning tests' fixtures (planning_cases.py)."""

from planning_cases import lumbar_bundle, lumbar_case

__all__ = ["lumbar_bundle", "lumbar_case"]
