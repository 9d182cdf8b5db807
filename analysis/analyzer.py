"""The analysis core: faces -> detectors -> ensemble -> report.

One `Analyzer` holds the loaded detectors, the ensemble's validated operating point and the face finders; the
dashboard, the CLI, the HTTP API, the video engine and the batch scanner all call it. Models load once and are
shared (read-only inference).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.artifacts import LoadedDetector, default_models_dir, load_detectors
from detectors.gate import GATE_FLOOR, GateDecision, gate_decision
from detectors.registry import detector_names, get_spec

from .batching import DEFAULT_MAX_CROPS, CropBatcher
from .ensemble import STRATEGIES, EnsembleResult, combine, verdict_for
from .errors import MediaError
from .faces import Face, FaceFinder, square_crop
from .media import LoadedImage, load_image
from .operating_point import FILE_NAME as OPERATING_POINT_FILE
from .operating_point import OperatingPoint, OperatingPointError, load_operating_point
from .provenance import read_provenance
from .quality import assess_quality
from .report import WHOLE_IMAGE_NOTE, FaceResult, ImageReport, join_notes
from .settings import DEFAULT_BAND, DEFAULT_THRESHOLD, AnalysisSettings

log = logging.getLogger(__name__)


def model_weight(detector: LoadedDetector) -> float:
    """Weight of a detector in the "weighted" strategy: how far its validation AUC is above chance."""
    metrics = detector.manifest.metrics or {}
    auc = None
    for key in ("val_auc", "auc"):
        if isinstance(metrics.get(key), (int, float)):
            auc = float(metrics[key])
            break
    if auc is None and isinstance(metrics.get("val"), dict):
        value = metrics["val"].get("auc")
        auc = float(value) if isinstance(value, (int, float)) else None
    if auc is None:
        return 1.0
    return max(auc - 0.5, 0.01)


def set_ensemble(face: FaceResult, ens: EnsembleResult | None) -> None:
    """Write an ensemble result into a face's result fields (clears them for None: no detector scored it)."""
    face.probability = None if ens is None else round(ens.probability, 5)
    face.verdict = None if ens is None else ens.verdict
    face.agreement = None if ens is None else ens.agreement
    face.votes = {} if ens is None else ens.votes
    face.weights = {} if ens is None else ens.weights


@dataclass
class VotePlan:
    """Which detectors vote in one analysis, and what the report says about the others."""
    names: list[str]                                                # the detectors that score and vote
    not_voting: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}: left out by the gate
    missing: dict[str, str] = field(default_factory=dict)           # wanted but not loaded: name -> why
    note: str | None = None                                         # for the report's message (gate fallback)
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)   # resolved: threshold and band set


# where an analysis's threshold and band came from (the report's `operating_point.source`)
VALIDATION, DEFAULT, EXPLICIT = "validation", "default", "explicit"


@dataclass
class Decision:
    """The threshold and band one analysis uses, and where they come from."""
    settings: AnalysisSettings               # a copy with threshold and band filled in
    source: str                              # VALIDATION (ensemble.json), DEFAULT (built-in) or EXPLICIT (caller)
    reason: str | None = None                # why not VALIDATION, one line
    operating_point: OperatingPoint | None = None   # the one used (source VALIDATION)
    explicit: list[str] = field(default_factory=list)   # the fields the caller set: "threshold", "band"

    def report_entry(self) -> dict[str, Any]:
        """The report's `operating_point`: {"source", "reason", "max_fpr", "val_fpr", "val_tpr", "explicit"}."""
        op = self.operating_point
        return {"source": self.source, "reason": self.reason,
                "max_fpr": op.max_fpr if op else None, "val_fpr": op.val.fpr if op else None,
                "val_tpr": op.val.tpr if op else None, "explicit": list(self.explicit)}


class Analyzer:
    def __init__(self, models_dir: str | Path | None = None, names: list[str] | None = None,
                 device: str = "cpu", batch_crops: int = DEFAULT_MAX_CROPS) -> None:
        self.models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        self.device = device
        self.detectors, self.load_errors = load_detectors(self.models_dir, names)
        # concurrent callers' crops share one pass per detector (analysis.batching); < 1: every call alone
        self.batch_crops = batch_crops
        self.batchers: dict[str, CropBatcher] = {}
        self._batchers_lock = threading.Lock()
        self.weights = {n: model_weight(d) for n, d in self.detectors.items()}
        self.gate_floor = GATE_FLOOR
        self.gate: dict[str, GateDecision] = {n: gate_decision(d.manifest.to_dict(), self.gate_floor)
                                              for n, d in self.detectors.items()}
        self.operating_point, self.operating_point_error = self._load_operating_point()
        self._finders: dict[tuple, FaceFinder] = {}
        self._finders_lock = threading.Lock()

    def _load_operating_point(self) -> tuple[OperatingPoint | None, str | None]:
        """`<models_dir>/ensemble.json`, or None; a bad file is a warning (its one-line reason), never a crash."""
        try:
            return load_operating_point(self.models_dir), None
        except (OperatingPointError, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("ignoring the ensemble operating point (%s); the built-in threshold %g and band %g apply",
                        reason, DEFAULT_THRESHOLD, DEFAULT_BAND)
            return None, reason

    # ---- the decision threshold and band: the validated operating point, else the built-in defaults ----------
    def decision(self, settings: AnalysisSettings | None = None) -> Decision:
        """The threshold and band an analysis with `settings` uses. A None threshold / band is filled from the
        operating point when there is one, chosen for this strategy and exactly these voting detectors; else from
        DEFAULT_THRESHOLD / DEFAULT_BAND. Explicit values are kept. Never raises."""
        settings = settings or AnalysisSettings()
        explicit = [k for k in ("threshold", "band") if getattr(settings, k) is not None]
        if len(explicit) == 2:
            return Decision(settings=dataclasses.replace(settings), source=EXPLICIT,
                            reason="threshold and band set explicitly", explicit=explicit)
        op, reason = self._operating_point_for(settings)
        threshold = settings.threshold if settings.threshold is not None else (
            op.threshold if op else DEFAULT_THRESHOLD)
        band = settings.band if settings.band is not None else (op.band if op else DEFAULT_BAND)
        return Decision(settings=dataclasses.replace(settings, threshold=threshold, band=band),
                        source=VALIDATION if op else DEFAULT, reason=reason, operating_point=op, explicit=explicit)

    def _operating_point_for(self, settings: AnalysisSettings) -> tuple[OperatingPoint | None, str | None]:
        """(the operating point, None) when it applies to `settings`, else (None, why not)."""
        op = self.operating_point
        if op is None:
            if self.operating_point_error:
                return None, f"{OPERATING_POINT_FILE} ignored: {self.operating_point_error}"
            return None, f"no {OPERATING_POINT_FILE} in the models folder"
        if op.strategy != settings.strategy:
            return None, (f"the operating point in {OPERATING_POINT_FILE} was chosen for the {op.strategy} "
                          f"strategy, not {settings.strategy}")
        try:
            active = self.active_detectors(settings)
        except ValueError:
            active = None   # an unknown detector name: the analysis reports it
        if not op.matches(active):
            return None, (f"the operating point in {OPERATING_POINT_FILE} was chosen for other detectors "
                          f"({', '.join(op.detectors) or 'none'}), not {', '.join(active or []) or 'none'}")
        if op.mirror != settings.mirror:
            return None, (f"the operating point in {OPERATING_POINT_FILE} was chosen with mirrored views "
                          f"{'on' if op.mirror else 'off'}, not {'on' if settings.mirror else 'off'}")
        return op, None

    def resolve_settings(self, settings: AnalysisSettings | None = None) -> AnalysisSettings:
        """A copy of `settings` with threshold and band filled in (see `decision`)."""
        return self.decision(settings).settings

    def record_decision(self, report: Any, settings: AnalysisSettings | None) -> AnalysisSettings:
        """Set a report's `settings` (resolved) and `operating_point` (where threshold and band came from);
        returns the resolved settings."""
        decision = self.decision(settings)
        report.settings = decision.settings.to_dict()
        report.operating_point = decision.report_entry()
        return decision.settings

    def operating_point_info(self) -> dict[str, Any]:
        """What the Models page, `cli.py models` and GET /v1/models show: the threshold and band of a default
        analysis (default strategy and detectors), where they come from, and the validation rates behind them."""
        d = self.decision(AnalysisSettings())
        op = d.operating_point
        return {"source": d.source, "reason": d.reason, "file": str(self.models_dir / OPERATING_POINT_FILE),
                "strategy": d.settings.strategy, "threshold": d.settings.threshold, "band": d.settings.band,
                "max_fpr": op.max_fpr if op else None,
                "val_fpr": op.val.fpr if op else None, "val_tpr": op.val.tpr if op else None,
                "val_n_real": op.val.n_real if op else None, "val_n_fake": op.val.n_fake if op else None,
                "detectors": list(op.detectors) if op else None, "mirror": op.mirror if op else None,
                "created": op.created if op else None}

    # ---- building blocks, shared with the video engine -------------------------------------
    def face_finder(self, settings: AnalysisSettings) -> FaceFinder:
        key = (settings.margin, settings.min_face_size, settings.face_threshold, settings.max_faces,
               settings.detect_max_side)
        with self._finders_lock:
            finder = self._finders.get(key)
            if finder is None:
                finder = FaceFinder(margin=settings.margin, min_face_size=settings.min_face_size,
                                    face_threshold=settings.face_threshold, max_faces=settings.max_faces,
                                    detect_max_side=settings.detect_max_side, device=self.device)
                self._finders[key] = finder
            return finder

    # ---- the quality gate: who votes by default ------------------------------------------------
    @property
    def gate_fallback(self) -> bool:
        """True when detectors are loaded but none passes the gate: then every loaded detector votes."""
        return bool(self.detectors) and not any(self.gate[n].votes for n in self.detectors)

    def default_detectors(self) -> list[str]:
        """The detectors of the default ensemble: the loaded ones that pass the gate (all loaded if none does)."""
        passing = [n for n in self.detectors if self.gate[n].votes]
        return passing or list(self.detectors)

    def gate_note(self) -> str | None:
        """One line when the gate falls back to every loaded detector; None otherwise."""
        if not self.gate_fallback:
            return None
        return (f"no detector passes the quality gate (validation AUC of at least {self.gate_floor:g} on every "
                f"data source), so all {len(self.detectors)} loaded detectors vote")

    def not_voting(self, settings: AnalysisSettings) -> list[dict[str, str]]:
        """Loaded detectors the gate leaves out of this analysis: none when the user chose the detectors."""
        if settings.detectors is not None or self.gate_fallback:
            return []
        return [{"name": n, "reason": self.gate[n].reason or ""} for n in self.detectors if not self.gate[n].votes]

    def detectors_setting(self, chosen: list[str]) -> list[str] | None:
        """`AnalysisSettings.detectors` for a selection in a UI: None (the gated default) when it is exactly the
        default set, so reports say which detectors the gate left out; the explicit list otherwise."""
        return None if set(chosen) == set(self.default_detectors()) else list(chosen)

    def vote_plan(self, settings: AnalysisSettings) -> VotePlan:
        """Who votes in an analysis with `settings` (ValueError for an unknown detector name)."""
        return VotePlan(names=self.active_detectors(settings), not_voting=self.not_voting(settings),
                        missing=self.missing_for(settings),
                        note=self.gate_note() if settings.detectors is None else None,
                        settings=settings if settings.resolved else self.resolve_settings(settings))

    def begin_report(self, report: Any, settings: AnalysisSettings | None) -> VotePlan:
        """Fill the fields every report has (image and video): settings (resolved) and operating_point first (so
        even a report that fails here records them), then models_used, models_missing, models_not_voting,
        model_checksums; the note is left to the caller, which owns `message`. Analyse with `plan.settings`.
        ValueError for an unknown detector name."""
        plan = self.vote_plan(self.record_decision(report, settings))
        report.models_used = list(plan.names)
        report.models_missing = dict(plan.missing)
        report.models_not_voting = [dict(e) for e in plan.not_voting]
        report.model_checksums = {n: self.detectors[n].checksum for n in plan.names}
        return plan

    def active_detectors(self, settings: AnalysisSettings) -> list[str]:
        if settings.detectors is None:
            return self.default_detectors()
        unknown = [n for n in settings.detectors if n not in detector_names()]
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(unknown)}; known: {', '.join(detector_names())}")
        return [n for n in settings.detectors if n in self.detectors]

    def missing_for(self, settings: AnalysisSettings) -> dict[str, str]:
        wanted = settings.detectors if settings.detectors is not None else detector_names()
        return {n: self.load_errors[n] for n in wanted if n in self.load_errors}

    def score_crops(self, crops: list[np.ndarray], names: list[str], mirror: bool = False) -> dict[str, np.ndarray]:
        """Raw logits (N,) per detector; each detector scores all crops in one batched pass, shared with the crops
        of other threads scoring at the same time (`CropBatcher`). With `mirror` (`AnalysisSettings.mirror`) each
        crop is scored as it is and mirrored left-right, in the same pass, and the two logits are averaged: a face
        and its mirror image are equally real. It ranks the held-out crops a little better and the labelled clips'
        frames worse (docs/SHIPPED_WEIGHTS.md), hence off by default."""
        if not crops:
            return {n: np.zeros(0, dtype=np.float32) for n in names}
        if not mirror:
            return {n: self._batcher(n).logits(crops) for n in names}
        views = list(crops) + [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        out = {}
        for n in names:
            both = self._batcher(n).logits(views)
            out[n] = ((both[:len(crops)] + both[len(crops):]) / 2).astype(np.float32)
        return out

    def _batcher(self, name: str) -> CropBatcher:
        with self._batchers_lock:
            batcher = self.batchers.get(name)
            if batcher is None:
                if name not in self.detectors:
                    raise KeyError(name)   # a detector that is not loaded, as before
                batcher = self.batchers[name] = CropBatcher(self.detectors[name].logits, self.batch_crops)
            return batcher

    def face_results(self, faces: list[Face], logits: dict[str, np.ndarray],
                     settings: AnalysisSettings) -> list[FaceResult]:
        if settings.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {settings.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if not settings.resolved:
            settings = self.resolve_settings(settings)
        names = list(logits)
        calibrated = {n: self.detectors[n].calibrate(logits[n]) for n in names}
        results: list[FaceResult] = []
        for i, face in enumerate(faces):
            probs = {n: float(calibrated[n][i]) for n in names}
            raw = {n: float(logits[n][i]) for n in names}
            result = FaceResult(
                box=[round(float(v), 1) for v in face.box], score=round(float(face.score), 4),
                models={n: round(p, 5) for n, p in probs.items()}, probability=None, verdict=None,
                logits={n: round(v, 4) for n, v in raw.items()},
                landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks]
                if face.landmarks is not None else None,
                size=int(round(face.visible_size)),
            )
            set_ensemble(result, self.combine_face(probs, raw, settings) if probs else None)
            results.append(result)
        return results

    def combine_face(self, probs: dict[str, float], logits: dict[str, float],
                     settings: AnalysisSettings) -> EnsembleResult:
        """The ensemble of one face from each detector's calibrated probability and raw logit (calibrated here
        with the detector's manifest temperature). Also what re-combines a stored result under new settings."""
        calibrated = {n: float(logits[n]) / float(self.detectors[n].manifest.temperature) for n in probs
                      if n in logits and n in self.detectors}
        return combine(probs, calibrated, settings, self.weights)

    # ---- the image pipeline -----------------------------------------------------------------
    def analyze_image(self, source: str | Path | bytes, settings: AnalysisSettings | None = None, *,
                      name: str | None = None) -> ImageReport:
        settings = settings or AnalysisSettings()
        label = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "<upload>")
        report = ImageReport(path=label, settings=settings.to_dict())
        timings: dict[str, float] = {}
        note: str | None = None
        try:
            plan = self.begin_report(report, settings)
            names, note, settings = plan.names, plan.note, plan.settings
            t = time.perf_counter()
            report.provenance = read_provenance(source, "image")
            timings["provenance"] = time.perf_counter() - t
            t = time.perf_counter()
            image = load_image(source, max_pixels=settings.max_pixels)
            timings["decode"] = time.perf_counter() - t
            report.width, report.height, report.sha256 = image.width, image.height, image.sha256

            t = time.perf_counter()
            faces = self.face_finder(settings).detect(image.rgb)
            timings["faces"] = time.perf_counter() - t
            if not faces and settings.whole_image_fallback:
                faces = [self._whole_image_face(image)]
                report.whole_image = True
                report.message = WHOLE_IMAGE_NOTE
            elif not faces:
                report.message = "no face found"

            report.quality = assess_quality(image.rgb, faces, image.jpeg_quality)
            if not names:
                report.error = "no detector available: " + "; ".join(
                    f"{n}: {why}" for n, why in report.models_missing.items())
            elif faces:
                crops = [f.crop for f in faces]
                logits: dict[str, np.ndarray] = {}
                for n in names:
                    t = time.perf_counter()
                    logits.update(self.score_crops(crops, [n], mirror=settings.mirror))
                    timings[f"model:{n}"] = time.perf_counter() - t
                t = time.perf_counter()
                report.faces = self.face_results(faces, logits, settings)
                timings["ensemble"] = time.perf_counter() - t
                worst = max(report.faces, key=lambda f: f.probability if f.probability is not None else -1)
                report.probability = worst.probability
                report.verdict = verdict_for(worst.probability, settings.threshold, settings.band)
        except MediaError as exc:
            report.error = str(exc)
        except (ValueError, KeyError) as exc:
            report.error = str(exc).strip("'\"")
        except MemoryError:
            report.error = "out of memory while analysing this image; try a smaller one"
        report.message = join_notes(report.message, note,
                                    report.provenance.declares_generated if report.provenance else None)
        report.timings = {k: round(v, 4) for k, v in timings.items()}
        report.timings["total"] = round(sum(timings.values()), 4)
        return report

    @staticmethod
    def _whole_image_face(image: LoadedImage) -> Face:
        h, w = image.rgb.shape[:2]
        box = (0.0, 0.0, float(w), float(h))
        return Face(box=box, score=0.0, landmarks=None, crop=square_crop(image.rgb, box, 0.0))

    # ---- what the Models page, `cli.py models` and GET /v1/models show ----------------------
    def model_info(self) -> list[dict[str, Any]]:
        """Per registered detector: load status, manifest, checksum, and the gate: `votes` (in the default
        ensemble), `gate_reason` (why it fails the gate; null when it passes or is not loaded), `gate_floor`, and
        the `engine` that scores faces (onnxruntime or pytorch)."""
        info = []
        voting = set(self.default_detectors())
        for n in detector_names():
            spec = get_spec(n)
            entry: dict[str, Any] = {"name": n, "architecture": spec.architecture, "family": spec.family,
                                     "default_input_size": spec.input_size,
                                     "loaded": n in self.detectors, "error": self.load_errors.get(n),
                                     "votes": n in voting, "gate_reason": None, "gate_floor": self.gate_floor}
            if n in self.detectors:
                d = self.detectors[n]
                entry.update({"input_size": d.input_size, "weights": str(self.models_dir / n / d.manifest.weights_file),
                              "checksum": d.checksum, "checksum_verified": True, "engine": d.engine,
                              "weight_in_ensemble": round(self.weights[n], 4),
                              "gate_reason": self.gate[n].reason,
                              "gate_auc_by_source": {k: round(v, 4) for k, v in self.gate[n].auc_by_source.items()},
                              "manifest": d.manifest.to_dict() if hasattr(d.manifest, "to_dict") else vars(d.manifest)})
            info.append(entry)
        return info


_ANALYZERS: dict[tuple[str, tuple[str, ...] | None], Analyzer] = {}
_ANALYZERS_LOCK = threading.Lock()


def get_analyzer(models_dir: str | Path | None = None, names: list[str] | None = None) -> Analyzer:
    """Process-wide analyzer per models folder: models load once and are shared by every caller."""
    key = (str(Path(models_dir or default_models_dir()).resolve()), tuple(names) if names else None)
    with _ANALYZERS_LOCK:
        if key not in _ANALYZERS:
            _ANALYZERS[key] = Analyzer(key[0], names)
        return _ANALYZERS[key]
