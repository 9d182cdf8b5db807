"""The video pipeline: probe -> sample -> decode (own thread) -> faces -> detectors -> tracks -> aggregate.

A decoding thread fills a bounded queue while the main thread runs face detection and the detectors on
batches of frames (all faces of a batch of frames go through each detector in one pass). Frames are dropped as
soon as their batch is done; only JPEG thumbnails and face crops are kept, so memory stays bounded on long
videos. Bad media never raises: the report carries a one-line `error` and whatever results were sound.
"""
from __future__ import annotations

import copy
import dataclasses
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from analysis.analyzer import VotePlan, set_ensemble
from analysis.audio.engine import audio_section
from analysis.audio.fusion import FusionResult, fuse
from analysis.audio.report import SCORED
from analysis.ensemble import EnsembleResult, count_votes, verdict_for
from analysis.errors import MediaError
from analysis.faces import Face, FaceFinder
from analysis.provenance import read_provenance
from analysis.quality import assess_video_quality, face_sharpness
from analysis.report import FaceResult, join_notes
from analysis.settings import DEFAULT_BAND, DEFAULT_FUSION, DEFAULT_THRESHOLD, AnalysisSettings

from .aggregate import (AggregationParams, TrackFaces, decision_text, decisive_tracks, frame_probability,
                        importance_order, mean_per_model, summarize, track_importance, video_probability)
from .decode import DecodedFrame, VideoInfo, open_reader, probe_video
from .report import FrameFace, FrameResult, TrackResult, VideoReport, encode_jpeg
from .sampling import SamplePlan, VideoOptions, sample_indices
from .tracking import TrackParams, link_tracks

Progress = Callable[[float, str], None]


class FaceAnalyzer(Protocol):
    """What the video engine asks of its analyzer (analysis.analyzer.Analyzer is one): who votes, faces, their
    scores and ensembles, and the models folder for the voice."""

    models_dir: Path

    def begin_report(self, report: Any, settings: AnalysisSettings | None) -> VotePlan: ...

    def face_finder(self, settings: AnalysisSettings) -> FaceFinder: ...

    def score_crops(self, crops: list[np.ndarray], names: list[str],
                    mirror: bool = False) -> dict[str, np.ndarray]: ...

    def face_results(self, faces: list[Face], logits: dict[str, np.ndarray],
                     settings: AnalysisSettings) -> list[FaceResult]: ...

    def active_detectors(self, settings: AnalysisSettings) -> list[str]: ...

    def gate_note(self) -> str | None: ...

    def combine_face(self, probs: dict[str, float], logits: dict[str, float],
                     settings: AnalysisSettings) -> EnsembleResult: ...

# share of the progress bar before frames are analysed (probing, sampling) and after (tracks, aggregation)
_P_START, _P_FRAMES_END = 0.03, 0.97


class _Monotonic:
    """Forwards progress, never backwards, ending at exactly 1.0."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.value = 0.0

    def __call__(self, value: float, stage: str) -> None:
        self.value = max(self.value, min(1.0, float(value)))
        if self.callback is not None:
            self.callback(self.value, stage)


@dataclass
class _Failure:
    error: Exception


_END = object()


class _Decoder(threading.Thread):
    """Decodes the planned frames into a bounded queue; stops early when `stop` is set."""

    def __init__(self, info: VideoInfo, plan: SamplePlan, depth: int, seek: bool) -> None:
        super().__init__(name="video-decode", daemon=True)
        self.reader = open_reader(info, seek=seek)
        self.plan = plan
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.seconds = 0.0

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            frames = self.reader.frames(self.plan.indices, self.stop)
            while True:
                t = time.perf_counter()
                frame = next(frames, None)
                self.seconds += time.perf_counter() - t
                if frame is None or not self._put(frame):
                    break
        except Exception as exc:  # noqa: BLE001 - handed to the main thread, which decides what it means
            self._put(_Failure(exc))
        finally:
            self._put(_END)

    def close(self) -> None:
        self.stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.join(timeout=10)


class _Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.totals[stage] = self.totals.get(stage, 0.0) + seconds


def analyze_video(path: str | Path, analyzer: FaceAnalyzer, settings: AnalysisSettings | None = None,
                  options: VideoOptions | None = None, progress: Progress | None = None,
                  cancel: threading.Event | None = None) -> VideoReport:
    """Analyse the faces of a video; bad media gives a report with `error` (one line), never an exception.

    Raises ValueError only for invalid `options` (a caller's mistake)."""
    settings = settings or AnalysisSettings()
    options = (options or VideoOptions()).validate()
    report = VideoReport(path=str(path), settings=settings.to_dict(), options=options.to_dict())
    report_progress = _Monotonic(progress)
    timer = _Timer()
    started = time.perf_counter()
    report_progress(0.0, "reading the video")
    t = time.perf_counter()
    report.provenance = read_provenance(path, "video")
    timer.add("provenance", time.perf_counter() - t)
    try:
        _run(report, Path(path), analyzer, settings, options, report_progress, cancel, timer)
    except MediaError as exc:
        report.error = str(exc)
        report.complete = False
    except MemoryError:
        report.error = "out of memory while analysing this video; try fewer frames or a smaller video"
        report.complete = False
    if not report.cancelled:
        report_progress(0.97, "listening to the sound track")
        t = time.perf_counter()
        report.audio = audio_section(path, analyzer.models_dir)
        timer.add("audio", time.perf_counter() - t)
    report.overall = fuse_video(report)
    report.message = join_notes(report.message, report.provenance.declares_generated)
    report.timings = {k: round(v, 4) for k, v in timer.totals.items()}
    report.timings["total"] = round(time.perf_counter() - started, 4)
    report_progress(1.0, "cancelled" if report.cancelled else "done")
    return report


def _run(report: VideoReport, path: Path, analyzer: FaceAnalyzer, settings: AnalysisSettings, options: VideoOptions,
         report_progress: _Monotonic, cancel: threading.Event | None, timer: _Timer) -> None:
    try:
        # resolves the threshold and band (the models' operating point) and records them in the report
        vote = analyzer.begin_report(report, settings)
    except ValueError as exc:
        raise MediaError(str(exc)) from None  # an unknown detector name from the user: a one-line error
    names, settings = vote.names, vote.settings
    report.message = vote.note   # kept if the media fails below; the notes at the end add to it

    t = time.perf_counter()
    info = probe_video(path)
    timer.add("probe", time.perf_counter() - t)
    report.metadata = info.metadata()
    report.sha256 = info.sha256
    if info.width * info.height > settings.max_pixels:
        raise MediaError(f"video frames of {info.width}x{info.height} exceed the {settings.max_pixels:,} pixel limit")
    plan = sample_indices(info.times, options)
    report.summary.update({"frames_planned": len(plan.indices), "sampling": plan.mode,
                           "window": [int(plan.window[0]), int(plan.window[1])]})
    if plan.capped_from:
        report.summary["capped_from"] = plan.capped_from
    if not names:
        raise MediaError("no detector available: " + "; ".join(f"{n}: {why}" for n, why in
                                                               report.models_missing.items()))
    report_progress(_P_START, f"analysing {len(plan.indices)} frames")

    finder = analyzer.face_finder(settings)
    # one batch decoded ahead is all the overlap needs; more would only hold more full frames in memory
    decoder = _Decoder(info, plan, depth=max(2, options.batch_frames), seek=options.seek)
    failure: Exception | None = None
    batch: list[DecodedFrame] = []
    total = len(plan.indices)
    decoder.start()

    def run_batch() -> None:
        done = len(report.frames)

        def step(share: float, stage: str) -> bool:
            """Progress inside the batch; False when cancelled (the unfinished batch is dropped)."""
            report_progress(_P_START + (_P_FRAMES_END - _P_START) * (done + len(batch) * share) / total, stage)
            return not (cancel is not None and cancel.is_set())

        results = _analyse_batch(batch, analyzer, finder, names, settings, options, timer, step)
        if results is None:
            report.cancelled = True
            return
        report.frames.extend(results)
        report_progress(_P_START + (_P_FRAMES_END - _P_START) * len(report.frames) / total,
                        f"analysed {len(report.frames)} of {total} frames")

    try:
        while not report.cancelled:
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            try:
                item = decoder.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, _Failure):
                failure = item.error
                continue
            batch.append(item)
            if len(batch) >= options.batch_frames:
                run_batch()
                batch = []
        if batch and not report.cancelled:
            run_batch()
            batch = []
    finally:
        decoder.close()
        timer.add("decode", decoder.seconds)
    report.summary.update({"seeks": decoder.reader.seeks, "frames_skipped_by_grab": decoder.reader.grabs})
    report.metadata["notes"] = list(info.notes)   # the reader may have added some
    if failure is not None and not isinstance(failure, MediaError):
        raise failure  # a programming error in the decoding thread
    report_progress(_P_FRAMES_END, "linking faces into tracks")

    t = time.perf_counter()
    _aggregate(report, settings, len(report.frames))
    timer.add("aggregate", time.perf_counter() - t)
    face_sizes = [face.size for face in report.faces]
    report.quality = assess_video_quality(info.width, info.height, info.fps,
                                          info.bitrate / 1000.0 if info.bitrate else None, face_sizes)
    with_faces = sum(1 for f in report.frames if f.faces)
    report.quality["frames_with_faces"] = with_faces
    if report.frames and with_faces < len(report.frames) / 2 and with_faces:
        report.quality["warnings"].append(
            f"A face was found in only {with_faces} of {len(report.frames)} analysed frames: the verdict rests "
            "on those frames alone.")

    analysed = len(report.frames)
    report.complete = analysed == total and failure is None and not report.cancelled
    notes = []
    if failure is not None:
        report.error = str(failure)
    elif info.damaged:
        report.error = info.damaged
        report.complete = False
    if report.cancelled:
        notes.append("cancelled")
    elif failure is not None and analysed:
        notes.append(f"partial result: {analysed} of {total} planned frames analysed")
    elif info.damaged and analysed:
        notes.append(f"partial result: the readable {info.duration:.2f} s were analysed")
    if analysed and not report.faces:
        notes.append(f"no face found in any of the {analysed} analysed frames")
    if report.cancelled and analysed:
        notes.append(f"{analysed} of {total} frames analysed")
    report.message = join_notes(*notes, vote.note)


def _analyse_batch(batch: list[DecodedFrame], analyzer: FaceAnalyzer, finder: FaceFinder, names: list[str],
                   settings: AnalysisSettings, options: VideoOptions, timer: _Timer,
                   step: Callable[[float, str], bool]) -> list[FrameResult] | None:
    """Faces, scores and thumbnails of a batch of frames; None when cancelled on the way."""
    first, last = batch[0].index, batch[-1].index
    if not step(0.0, f"finding faces in frames {first}-{last}"):
        return None
    t = time.perf_counter()
    faces_per_frame = finder.detect_many([f.rgb for f in batch])
    timer.add("faces", time.perf_counter() - t)

    crops = [face.crop for faces in faces_per_frame for face in faces]
    logits: dict[str, np.ndarray] = {}
    if crops:
        for k, name in enumerate(names):  # one call per detector so that each one's time is known
            if not step((k + 1) / (len(names) + 2), f"scoring {len(crops)} faces of frames {first}-{last} "
                                                     f"with {name}"):
                return None
            t = time.perf_counter()
            logits.update(analyzer.score_crops(crops, [name], mirror=settings.mirror))
            timer.add(f"model:{name}", time.perf_counter() - t)

    results: list[FrameResult] = []
    offset = 0
    for frame, faces in zip(batch, faces_per_frame):
        t = time.perf_counter()
        part = {n: v[offset:offset + len(faces)] for n, v in logits.items()}
        offset += len(faces)
        face_results = analyzer.face_results(faces, part, settings) if faces else []
        timer.add("ensemble", time.perf_counter() - t)

        t = time.perf_counter()
        thumb, scale = (encode_jpeg(frame.rgb, options.thumb_side) if options.keep_thumbnails else (None, 1.0))
        crops_jpeg = [encode_jpeg(face.crop, options.crop_side)[0] if options.keep_thumbnails else None
                      for face in faces]
        timer.add("thumbnails", time.perf_counter() - t)
        t = time.perf_counter()
        sharp = [face_sharpness(frame.rgb, face.box) for face in faces]   # how much each person counts
        timer.add("sharpness", time.perf_counter() - t)
        results.append(FrameResult(
            index=frame.index, time=round(frame.time, 4),
            faces=[FrameFace.from_result(r, crop_jpeg=c, sharpness=None if v is None else round(v, 1))
                   for r, c, v in zip(face_results, crops_jpeg, sharp)],
            thumbnail=thumb, thumb_scale=scale))
    return results


def _aggregate(report: VideoReport, settings: AnalysisSettings, analysed: int,
               params: AggregationParams | None = None, track_params: TrackParams | None = None) -> None:
    """Tracks, their importance and verdicts, and the video's verdict from its most suspicious person who counts.
    Track ids are renumbered by importance (track 0 = "Person 1", the person who counts most)."""
    threshold, band = settings.threshold, settings.band
    frames = report.frames
    ids = link_tracks([[face.box for face in fr.faces] for fr in frames], [fr.time for fr in frames],
                      [[face.landmarks for face in fr.faces] for fr in frames], track_params)
    by_link: dict[int, list[FrameFace]] = {}
    for fr, frame_ids in zip(frames, ids):
        for face, tid in zip(fr.faces, frame_ids):
            by_link.setdefault(tid, []).append(face)
    sides = [face.size for faces in by_link.values() for face in faces]
    frame_side = min(report.width or 0, report.height or 0) or max(sides, default=1)
    linked = track_importance({tid: TrackFaces(sides=[f.size for f in faces], scores=[f.score for f in faces],
                                               sharpness=[f.sharpness for f in faces if f.sharpness is not None])
                               for tid, faces in by_link.items()}, analysed, frame_side, params)
    renumber = {old: new for new, old in enumerate(importance_order(linked))}
    importance = {renumber[old]: imp for old, imp in linked.items()}
    for fr, frame_ids in zip(frames, ids):
        for face, tid in zip(fr.faces, frame_ids):
            face.track = renumber[tid]
        fr.probability = frame_probability([face.probability for face in fr.faces])
        fr.verdict = verdict_for(fr.probability, threshold, band)

    by_track: dict[int, list[tuple[FrameResult, FrameFace]]] = {}
    for fr in frames:
        for face in fr.faces:
            by_track.setdefault(face.track, []).append((fr, face))
    decisive = set(decisive_tracks(importance))
    tracks = []
    for tid in sorted(by_track):
        members = by_track[tid]
        s = summarize([face.probability for _, face in members], threshold, params)
        imp = importance[tid]
        models = mean_per_model([face.models for _, face in members])
        tracks.append(TrackResult(
            id=tid, frames=[fr.index for fr, _ in members], times=[fr.time for fr, _ in members],
            models=models, probability=_r(s.probability), verdict=verdict_for(s.probability, threshold, band),
            fake_share=_r(s.fake_share), mean=_r(s.mean), top_mean=_r(s.top_mean), max=_r(s.max),
            method=s.method, decisive=tid in decisive,
            mean_size=round(float(np.mean([face.size for _, face in members])), 1),
            importance=imp.score, major=imp.major, minor_reason=imp.minor_reason, median_size=imp.median_side,
            relative_size=imp.relative_side, detection_score=imp.detection_score, sharpness=imp.sharpness,
            votes=count_votes(models, threshold, band) if models else {}))
    report.tracks = tracks
    report.probability, report.decisive_track = video_probability({t.id: t.probability for t in tracks},
                                                                  [t.id for t in tracks if t.decisive])
    report.verdict = verdict_for(report.probability, threshold, band)
    report.decision = decision_text(importance, report.decisive_track)
    over_frames = summarize([fr.probability for fr in frames], threshold, params)
    report.summary.update({
        "frames_analysed": analysed, "frames_with_faces": sum(1 for fr in frames if fr.faces),
        "faces": sum(len(fr.faces) for fr in frames), "tracks": len(tracks),
        "frame_probability": over_frames.to_dict(),
    })


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 5)


# Settings decided while the video is analysed (which faces are found, how they are cropped and scored): a stored
# report cannot answer a change of these, only a new analysis can.
FACE_SETTINGS = ("margin", "min_face_size", "face_threshold", "max_faces", "detect_max_side", "max_pixels", "mirror")


@dataclass
class Rescored:
    """A stored video report with its per-face detector scores combined again under other settings."""
    report: VideoReport
    not_run: list[str] = field(default_factory=list)   # chosen detectors without stored scores (need a new analysis)
    changed: list[str] = field(default_factory=list)   # FACE_SETTINGS that differ (need a new analysis); kept as before


def fuse_video(report: VideoReport) -> FusionResult:
    """The video's overall verdict from its faces (`report.probability`) and its voice (`report.audio`), by the
    fusion in its settings (analysis.audio.fusion; default "auto"), with the faces' threshold and band."""
    settings = report.settings or {}
    audio = report.audio
    voice = audio.probability if audio is not None and audio.status == SCORED else None
    return fuse(report.probability, voice, settings.get("fusion") or DEFAULT_FUSION,
                bool(audio is not None and audio.passes_gate),
                settings.get("threshold") if settings.get("threshold") is not None else DEFAULT_THRESHOLD,
                settings.get("band") if settings.get("band") is not None else DEFAULT_BAND)


def rescore_video(report: VideoReport, analyzer: FaceAnalyzer, settings: AnalysisSettings) -> Rescored:
    """`report` under new threshold, band, strategy and detector choice, from its stored per-face scores: each
    face's ensemble again (Analyzer.combine_face), then frames, people and the video's verdict (_aggregate). The
    original is left as it is. Detectors that were not run and changed FACE_SETTINGS cannot be applied from stored
    scores: they are listed, the detectors that were run and the settings of the analysis are used instead.
    ValueError for an unknown detector name."""
    stored = list(report.models_used)
    old = report.settings or {}
    changed = [k for k in FACE_SETTINGS if k in old and old[k] != getattr(settings, k)]
    wanted = analyzer.active_detectors(settings)
    not_run = [n for n in wanted if n not in stored]
    usable = [n for n in wanted if n in stored]
    if not usable:   # nothing chosen was scored: the analysis stays as it was
        return Rescored(report=report, not_run=not_run, changed=changed)
    kept = {k: old[k] for k in changed}
    if not_run:
        kept["detectors"] = usable
    new = copy.deepcopy(report)   # the JPEG bytes are immutable and shared, not copied
    note_before = analyzer.gate_note()
    plan = analyzer.begin_report(new, dataclasses.replace(settings, **kept))
    for face in new.faces:
        face.models = {n: face.models[n] for n in plan.names if n in face.models}
        face.logits = {n: face.logits[n] for n in plan.names if n in face.logits}
        set_ensemble(face, analyzer.combine_face(face.models, face.logits, plan.settings) if face.models else None)
    _aggregate(new, plan.settings, len(new.frames))
    new.overall = fuse_video(new)
    notes = [n for n in (report.message or "").split("; ") if n and n != note_before]
    new.message = join_notes(*notes, plan.note)
    return Rescored(report=new, not_run=not_run, changed=changed)
