"""From per-face probabilities to per-frame, per-track and per-video ones.

The reference is the DFDC winner's (Seferbekov) "confident strategy": when many frames are confidently fake,
average only those (a face swap that shows in part of the frames is not diluted by the rest); when nearly all
are confidently real, average those; else the plain mean. The winner's thresholds are kept (0.8 / 0.2, more
than 1/2.5 of the frames fake, more than 90 % real); its absolute "more than 11 fakes" was for 32 frames, where
the share already demands 13: it becomes a floor of 2 so that 10-frame analyses can be confident too.

Which people decide the video: every track (person) gets a `TrackImportance` from how many of the analysed frames
it is on, its median face size relative to the frame, its mean face-detection score and its sharpness. A tiny,
brief or uncertainly detected face is "minor": it cannot decide the video on its own (a face on a poster behind a
news anchor, a blurred passer-by). The video is as suspicious as its most suspicious major track; minor tracks
count only when no track is major.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .report import person_label


@dataclass(frozen=True)
class AggregationParams:
    fake_t: float = 0.8            # a frame is confidently fake at or above this
    real_t: float = 0.2            # ... confidently real below this
    fake_share: float = 1 / 2.5    # more than this share of confident fakes -> mean of those
    min_fake: int = 2              # ... and at least this many
    real_share: float = 0.9        # more than this share of confident reals -> mean of those
    top_share: float = 0.25        # "most suspicious part": mean of the top quarter of frames
    # ---- how much a track (person) counts: TrackImportance.score is the weighted mean of four terms in [0, 1]
    weight_frames: float = 0.4      # share of the analysed frames the face is on
    weight_size: float = 0.3        # median face side / the frame's shorter side, full at `large_face`
    weight_confidence: float = 0.15  # mean face-detection score, 0 at `confidence_floor`, full at 1
    weight_sharpness: float = 0.15  # median sharpness, full at `sharp_face` (left out when not measured)
    large_face: float = 0.15        # a face this share of the frame's shorter side (or more) is "large"
    confidence_floor: float = 0.9   # the face finder's default acceptance score
    sharp_face: float = 100.0       # variance of the Laplacian (analysis.quality.sharpness) of a sharp face
    # ---- a "minor" track cannot decide the video on its own:
    tiny_face: float = 0.04         # tiny: median face side below this share of the frame's shorter side ...
    tiny_face_px: float = 40.0      # ... or below this many pixels
    brief_share: float = 0.25       # brief: on fewer than this share of the analysed frames ...
    main_share: float = 0.5         # ... while another track is on at least this share
    min_detection_score: float = 0.95   # uncertain: mean face-detection score below this


@dataclass
class Summary:
    probability: float | None      # the aggregate the verdict uses
    method: str                    # "confident_fake" | "confident_real" | "mean" | "none"
    mean: float | None
    top_mean: float | None         # mean of the most suspicious `top_share` of frames
    max: float | None
    fake_share: float | None       # share of frames at or above the verdict threshold
    count: int

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 5)  # noqa: E731
        return {"probability": r(self.probability), "method": self.method, "mean": r(self.mean),
                "top_mean": r(self.top_mean), "max": r(self.max), "fake_share": r(self.fake_share),
                "count": self.count}


def confident_mean(probs: Sequence[float], params: AggregationParams | None = None) -> tuple[float | None, str]:
    p = params or AggregationParams()
    x = np.asarray([v for v in probs if v is not None], dtype=np.float64)
    if len(x) == 0:
        return None, "none"
    fakes = x >= p.fake_t
    if fakes.sum() > len(x) * p.fake_share and fakes.sum() >= p.min_fake:
        return float(x[fakes].mean()), "confident_fake"
    reals = x < p.real_t
    if reals.sum() > len(x) * p.real_share:
        return float(x[reals].mean()), "confident_real"
    return float(x.mean()), "mean"


def top_mean(probs: Sequence[float], share: float = 0.25) -> float | None:
    x = np.sort(np.asarray([v for v in probs if v is not None], dtype=np.float64))[::-1]
    if len(x) == 0:
        return None
    k = max(1, int(np.ceil(len(x) * share)))
    return float(x[:k].mean())


def summarize(probs: Sequence[float | None], threshold: float = 0.5,
              params: AggregationParams | None = None) -> Summary:
    p = params or AggregationParams()
    x = np.asarray([v for v in probs if v is not None], dtype=np.float64)
    if len(x) == 0:
        return Summary(None, "none", None, None, None, None, 0)
    value, method = confident_mean(x, p)
    return Summary(probability=value, method=method, mean=float(x.mean()), top_mean=top_mean(x, p.top_share),
                   max=float(x.max()), fake_share=float((x >= threshold).mean()), count=int(len(x)))


def frame_probability(face_probs: Sequence[float | None]) -> float | None:
    """A frame is as suspicious as its most suspicious face."""
    x = [v for v in face_probs if v is not None]
    return float(max(x)) if x else None


def mean_per_model(models: Sequence[dict[str, float]]) -> dict[str, float]:
    names = sorted({n for m in models for n in m})
    return {n: round(float(np.mean([m[n] for m in models if n in m])), 5) for n in names}


@dataclass(frozen=True)
class TrackFaces:
    """What the engine measured of one track's faces, one entry per frame the track is on."""
    sides: Sequence[float]           # face box side in original pixels (longest side)
    scores: Sequence[float]          # face-detector probability
    sharpness: Sequence[float] = ()  # analysis.quality.sharpness of the face box; empty when not measured


@dataclass(frozen=True)
class TrackImportance:
    """How much one track (person) counts for the video's verdict, and whether it may decide it on its own."""
    frames: int                      # analysed frames the face is on
    analysed: int                    # analysed frames in all
    median_side: float               # median face side in pixels
    relative_side: float             # ... divided by the frame's shorter side
    detection_score: float           # mean face-detector probability
    sharpness: float | None          # median sharpness; None when not measured
    score: float                     # 0..1, see AggregationParams (weights)
    tiny: bool                       # minor: the face is tiny
    brief: bool                      # minor: seen briefly while another person is seen most of the time
    uncertain: bool                  # minor: the face detector was not sure it is a face
    large: bool = False              # the face is large (for the words only)

    @property
    def share(self) -> float:
        return self.frames / max(self.analysed, self.frames, 1)

    @property
    def major(self) -> bool:
        """May decide the video on its own."""
        return not (self.tiny or self.brief or self.uncertain)

    @property
    def minor_reason(self) -> str | None:
        """Why the track is minor, in words ("seen in 3 of 16 frames; small face (22 px)"); None when major."""
        reasons = []
        if self.brief:
            reasons.append(f"seen in only {self.frames} of {self.analysed} frames")
        if self.tiny:
            reasons.append(f"small face ({self.median_side:.0f} px, {self.relative_side:.0%} of the frame's "
                           "shorter side)")
        if self.uncertain:
            reasons.append(f"uncertain face detection (mean score {self.detection_score:.2f})")
        return "; ".join(reasons) or None

    def describe(self, full: bool = False) -> str:
        """Short words for the decision sentence: "seen in 16 of 16 frames, large face" (full) or "1 frame, small
        face"."""
        seen = (f"seen in {self.frames} of {self.analysed} frames" if full
                else f"{self.frames} frame{'s' if self.frames != 1 else ''}")
        size = "small face" if self.tiny else "large face" if self.large else None
        return ", ".join(x for x in (seen, size, "uncertain detection" if self.uncertain else None) if x)


def _term(value: float, full: float) -> float:
    return float(min(max(value / full, 0.0), 1.0)) if full > 0 else 1.0


def track_importance(tracks: Mapping[int, TrackFaces], analysed: int, frame_side: float,
                     params: AggregationParams | None = None) -> dict[int, TrackImportance]:
    """The importance of each track; `frame_side` is the frame's shorter side in pixels."""
    p = params or AggregationParams()
    frame_side = max(float(frame_side), 1.0)
    analysed = max(int(analysed), max((len(t.sides) for t in tracks.values()), default=0))
    shares = {tid: len(t.sides) / max(analysed, 1) for tid, t in tracks.items()}
    out: dict[int, TrackImportance] = {}
    for tid, t in tracks.items():
        if not t.sides:
            raise ValueError(f"track {tid} has no face")
        side = float(np.median(t.sides))
        relative = side / frame_side
        score = float(np.mean(t.scores)) if len(t.scores) else 0.0
        sharp = float(np.median(t.sharpness)) if len(t.sharpness) else None
        terms = [(p.weight_frames, shares[tid]), (p.weight_size, _term(relative, p.large_face)),
                 (p.weight_confidence, _term(score - p.confidence_floor, 1.0 - p.confidence_floor))]
        if sharp is not None:
            terms.append((p.weight_sharpness, _term(sharp, p.sharp_face)))
        total = sum(w for w, _ in terms)
        others = max((v for other, v in shares.items() if other != tid), default=0.0)
        out[tid] = TrackImportance(
            frames=len(t.sides), analysed=analysed, median_side=round(side, 1), relative_side=round(relative, 4),
            detection_score=round(score, 4), sharpness=None if sharp is None else round(sharp, 1),
            score=round(sum(w * v for w, v in terms) / total if total > 0 else 0.0, 4),
            tiny=side < p.tiny_face_px or relative < p.tiny_face,
            brief=shares[tid] < p.brief_share and others >= p.main_share,
            uncertain=score < p.min_detection_score, large=relative >= p.large_face)
    return out


def importance_order(importance: Mapping[int, TrackImportance]) -> list[int]:
    """Track ids, most important first (ties: in order of first appearance, i.e. by id)."""
    return sorted(importance, key=lambda t: (-importance[t].score, t))


def decisive_tracks(importance: Mapping[int, TrackImportance]) -> list[int]:
    """The tracks that may decide the video: the major ones; every track when none is major."""
    major = [t for t, imp in importance.items() if imp.major]
    return major or list(importance)


def video_probability(track_probs: dict[int, float | None], decisive: Sequence[int]) -> tuple[float | None, int | None]:
    """The video is as suspicious as its most suspicious person (decisive track). Returns (probability, track)."""
    best, best_id = None, None
    for t in decisive:
        v = track_probs.get(t)
        if v is not None and (best is None or v > best):
            best, best_id = v, t
    return best, best_id


def _people(ids: Sequence[int], importance: Mapping[int, TrackImportance], most: int = 3) -> str:
    """"person 2 (3 frames) and person 3 (1 frame, small face)"; past `most`, "... and 4 others"."""
    named = [f"{person_label(t).lower()} ({importance[t].describe()})" for t in ids[:most]]
    if len(ids) > most:
        named.append(f"{len(ids) - most} others")
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def decision_text(importance: Mapping[int, TrackImportance], decisive: int | None) -> str | None:
    """One sentence on who decides the video and why the others do not (None without a deciding track), e.g.
    "Person 1 (seen in 16 of 16 frames, large face) decides the video; person 2 (3 frames) and person 3 (1 frame,
    small face) are minor and do not decide it."  Track ids are person numbers - 1 (see person_label)."""
    if decisive is None or decisive not in importance:
        return None
    me = importance[decisive]
    lead = f"{person_label(decisive)} ({me.describe(full=True)})"
    others = [t for t in sorted(importance) if t != decisive]
    if not others:
        return f"{lead} decides the video: the only person found" + (
            f", though a minor one ({me.minor_reason})." if not me.major else ".")
    if not me.major:
        return ("No person is seen long, large or clearly enough to decide the video on their own, so the most "
                f"suspicious one does: {lead.replace('Person', 'person', 1)}; "
                f"{_people(others, importance)} {'is' if len(others) == 1 else 'are'} less suspicious.")
    major = [t for t in others if importance[t].major]
    minor = [t for t in others if not importance[t].major]
    parts = [f"{lead} decides the video"]
    if major:
        one = len(major) == 1
        parts.append(f"{_people(major, importance)} count{'s' if one else ''} too but look{'s' if one else ''} "
                     "less suspicious")
    if minor:
        one = len(minor) == 1
        parts.append(f"{_people(minor, importance)} {'is' if one else 'are'} minor and do{'es' if one else ''} "
                     "not decide it")
    return "; ".join(parts) + "."
