"""The planning tests' fixtures (planning_cases.py)."""

from planning_cases import hip_bundle, lumbar_bundle, lumbar_case

__all__ = ["hip_bundle", "lumbar_bundle", "lumbar_case"]
