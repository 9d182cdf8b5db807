"""Downloads: the report as JSON or as a self-contained HTML page, a video's per-frame scores as CSV."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from analysis.report import json_safe
from visualization.html_report import ReportPictures, render_html_report


def report_json(report: Any) -> bytes:
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    return json.dumps(json_safe(data), indent=2, ensure_ascii=False).encode("utf-8")


def reports_json(reports: list[Any]) -> bytes:
    return json.dumps(json_safe([r.to_dict() for r in reports]), indent=2, ensure_ascii=False).encode("utf-8")


def report_html(report: Any, picture: np.ndarray | None = None, crops: list[np.ndarray] | None = None,
                heatmaps: dict[str, np.ndarray] | None = None) -> bytes:
    """The report as one HTML page to share; `picture` is the page's picture with its boxes already drawn,
    `heatmaps` caption -> RGB overlay (e.g. the Grad-CAM shown on the page)."""
    pictures = ReportPictures(picture=picture, boxed=True, crops=crops, heatmaps=dict(heatmaps or {}))
    return render_html_report(report, pictures).encode("utf-8")


def frames_csv(report: Any) -> bytes:
    """One row per face per analysed frame (a row with empty scores for frames without a face)."""
    models = list(getattr(report, "models_used", []) or [])
    header = ["frame", "time_s", "face", "person", "x1", "y1", "x2", "y2", "face_score", "face_px",
              *[f"p_fake_{m}" for m in models], "p_fake_ensemble", "verdict", "agreement"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for frame in report.frames:
        if not frame.faces:
            writer.writerow([frame.index, f"{frame.time:.3f}"] + [""] * (len(header) - 2))
            continue
        for i, face in enumerate(frame.faces):
            track = getattr(face, "track", None)
            writer.writerow([
                frame.index, f"{frame.time:.3f}", i + 1, "" if track is None else int(track) + 1,
                *[f"{v:.1f}" for v in face.box], f"{face.score:.4f}", face.size,
                *["" if face.models.get(m) is None else f"{face.models[m]:.5f}" for m in models],
                "" if face.probability is None else f"{face.probability:.5f}", face.verdict or "",
                "" if face.agreement is None else f"{face.agreement:.4f}",
            ])
    return out.getvalue().encode("utf-8")
