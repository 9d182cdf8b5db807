"""The quality gate: whether a detector votes in the default ensemble.

A detector votes by default only when its validation AUC reaches GATE_FLOOR on every data source recorded in its
manifest (`metrics.val_auc_by_source`, written by training). A user can still include a detector that does not
pass by naming it explicitly (CLI `--detectors`, API `detectors=`, the dashboard's sidebar).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GATE_FLOOR = 0.75
"""Lowest validation AUC, on every data source, for a detector to vote by default. A detector that cannot separate
a source better than this is near a coin flip there and would only dilute the ensemble."""

NO_SOURCE_AUC = "no per-source validation AUC in its manifest"


@dataclass
class GateDecision:
    votes: bool                          # passes the gate: votes in the default ensemble
    reason: str | None                   # one line on why it does not vote; None when it does
    auc_by_source: dict[str, float] = field(default_factory=dict)   # the sources that were judged

    def to_dict(self) -> dict[str, Any]:
        return {"votes": self.votes, "reason": self.reason, "auc_by_source": dict(self.auc_by_source)}


def _auc(value: Any) -> float | None:
    """A usable AUC, or None (null: that source had a single class in validation; NaN alike)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def gate_decision(manifest: Mapping[str, Any], floor: float = GATE_FLOOR) -> GateDecision:
    """Judge one detector from its manifest (as a dict): it votes when every source's validation AUC >= floor.

    Sources whose AUC is null are skipped. A manifest with no metrics, or no non-null source, does not vote.
    A `"gate"` entry in the manifest is ignored: the floor is GATE_FLOOR unless the caller passes another.
    """
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 <= floor <= 1.0:
        raise ValueError(f"the gate floor must be a number from 0 to 1, not {floor!r}")
    metrics = manifest.get("metrics") if isinstance(manifest, Mapping) else None
    by_source = metrics.get("val_auc_by_source") if isinstance(metrics, Mapping) else None
    aucs: dict[str, float] = {}
    if isinstance(by_source, Mapping):
        for source, value in by_source.items():
            auc = _auc(value)
            if auc is not None:
                aucs[str(source)] = auc
    if not aucs:
        return GateDecision(votes=False, reason=NO_SOURCE_AUC, auc_by_source={})
    below = [(source, auc) for source, auc in aucs.items() if auc < floor]
    if not below:
        return GateDecision(votes=True, reason=None, auc_by_source=aucs)
    where = ", ".join(f"{source} ({auc:.3f})" for source, auc in below)
    return GateDecision(votes=False, reason=f"validation AUC below {floor:g} on {where}", auc_by_source=aucs)
