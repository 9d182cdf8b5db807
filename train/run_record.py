"""The end of a cached-feature training run (frozen_prefix, distill): MLflow, best.pt and metrics.json."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from analysis.report import json_safe
from train.checkpoints import save_checkpoint


def finish_run(out_dir: Path, ckpt: dict[str, Any], args: argparse.Namespace, history: list[dict[str, Any]],
               run_name: str, recipe: str, report: dict[str, Any],
               logged: dict[str, dict[str, Any]] | None = None) -> Path:
    """Log the run to MLflow unless `args.no_mlflow` (its id goes into `ckpt`), then write `out_dir/best.pt` (the
    checkpoint train.convert reads) and `out_dir/metrics.json` (`report`); `logged` names extra JSON artifacts."""
    if not args.no_mlflow:
        from train.tracking import Tracker   # mlflow is imported only when a run is tracked
        tracker = Tracker()
        if tracker.enabled:
            tracker.start(run_name=run_name, tags={"recipe": recipe})
            tracker.log_params({k: v for k, v in vars(args).items() if not isinstance(v, list)})
            for entry in history:
                tracker.log_metrics({"loss": entry["loss"], "val_auc": entry["val_auc"]}, step=entry["epoch"])
            tracker.log_metrics({k: v for k, v in ckpt["metrics"].items() if isinstance(v, float)})
            for name, data in (logged or {}).items():
                tracker.log_dict(json_safe(data), name)
            ckpt["run_id"] = tracker.run_id or ""
            tracker.end()
    best = out_dir / "best.pt"
    save_checkpoint(best, ckpt)
    (out_dir / "metrics.json").write_text(json.dumps(json_safe(report), indent=2))
    return best
