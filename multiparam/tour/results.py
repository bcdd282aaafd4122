"""Questions every renderer asks of a tour's results.

The results are ``{backend: run_backend(...) record}`` as ``collect``
returns them (or as ``results.json`` recorded them); a backend that could
not run has ``"missing"`` (why, and how to install it) instead of steps.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ..registry import all_backends
from .steps import STEP_IDS


def display_name(backend: str) -> str:
    """The name people call ``backend``'s framework by (from the registry)."""
    spec = all_backends().get(backend)
    return (spec.display if spec is not None else "") or backend


def step_ids_of(results: Dict[str, dict]) -> List[str]:
    """The steps that ran, in order, on any backend (all steps if none did)."""
    ids: List[str] = []
    for result in results.values():
        ids += [s["id"] for s in result.get("steps", []) if s["id"] not in ids]
    return ids or list(STEP_IDS)


def step_record(result: dict, sid: str) -> Optional[dict]:
    """What one backend recorded for step ``sid``, or None if it did not run it."""
    return next((s for s in result.get("steps", []) if s["id"] == sid), None)


def same_everywhere(results: Dict[str, dict], sid: str) -> List[str]:
    """The backends whose multiparam output of step ``sid`` is identical,
    when that is every backend that ran (at least two); else []."""
    ran = {b: step_record(r, sid) for b, r in results.items() if not r.get("missing")}
    outs = {b: s["mp_output"] for b, s in ran.items() if s is not None and not s.get("error")}
    if len(outs) >= 2 and len(outs) == len(ran) and len(set(outs.values())) == 1:
        return list(outs)
    return []
