"""The planning tests' fixtures (planning_cases.py)."""

from planning_cases import bare_lumbar_bundle, hip_bundle, lumbar_bundle, lumbar_case

__all__ = ["bare_lumbar_bundle", "hip_bundle", "lumbar_bundle", "lumbar_case"]
