"""video.engine.rescore_video: a stored video report under other threshold, band, strategy and detectors gives what
a new analysis with those settings gives, without analysing again; what stored scores cannot answer is listed."""
from __future__ import annotations

import dataclasses

import pytest

from analysis.settings import AnalysisSettings
from video.engine import analyze_video, rescore_video
from video.sampling import VideoOptions
from video_fixtures import two_faces_frames, write_clip

OPTIONS = VideoOptions(frames=8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, _ = two_faces_frames(16)
    return write_clip(tmp_path_factory.mktemp("rescore") / "two.mp4", frames, fps=8)


@pytest.fixture(scope="module")
def analysed(clip, analyzer):
    report = analyze_video(clip, analyzer, AnalysisSettings(), OPTIONS)
    assert report.error is None and len(report.tracks) == 2 and report.faces
    return report


def _outcome(report) -> dict:
    """What a person reads: every face's ensemble result, each person's and the video's verdict and decider."""
    return {
        "faces": [(fr.index, f.track, sorted(f.models), f.verdict, f.votes, f.weights) for fr in report.frames
                  for f in fr.faces],
        "probabilities": [f.probability for f in report.faces],
        "tracks": [(t.id, t.verdict, t.fake_share, t.votes, t.decisive) for t in report.tracks],
        "track_probabilities": [t.probability for t in report.tracks],
        "video": (report.verdict, report.decisive_track, report.decision, report.models_used),
        "settings": {k: report.settings[k] for k in ("threshold", "band", "strategy", "detectors")},
    }


def _same(a: dict, b: dict) -> None:
    assert a["faces"] == b["faces"] and a["tracks"] == b["tracks"] and a["video"] == b["video"]
    assert a["settings"] == b["settings"]
    # stored scores are rounded (probabilities to 5 decimals, logits to 4): the same result to ~1e-4
    assert a["probabilities"] == pytest.approx(b["probabilities"], abs=2e-4)
    assert a["track_probabilities"] == pytest.approx(b["track_probabilities"], abs=2e-4)


@pytest.mark.parametrize("changes", [
    {"threshold": 0.45, "band": 0.0},
    {"strategy": "majority", "threshold": 0.5, "band": 0.02},
    {"strategy": "mean_probability", "detectors": ["swin", "xception"]},
], ids=["threshold", "majority", "subset"])
def test_rescoring_equals_a_new_analysis(clip, analyzer, analysed, changes):
    before = _outcome(analysed)
    settings = AnalysisSettings(**changes)
    rescored = rescore_video(analysed, analyzer, settings)
    assert rescored.not_run == [] and rescored.changed == []
    _same(_outcome(rescored.report), _outcome(analyze_video(clip, analyzer, settings, OPTIONS)))
    assert _outcome(analysed) == before, "the stored analysis was changed"
    assert rescored.report.frames[0].thumbnail is analysed.frames[0].thumbnail   # pictures shared, not copied


def test_a_threshold_change_moves_the_verdicts(analyzer, analysed):
    top = analysed.probability      # the decisive person's aggregate: it does not depend on the threshold
    low = rescore_video(analysed, analyzer, AnalysisSettings(threshold=max(0.0, top - 0.01), band=0.0)).report
    high = rescore_video(analysed, analyzer, AnalysisSettings(threshold=min(1.0, top + 0.01), band=0.0)).report
    assert low.verdict == "FAKE" and high.verdict == "REAL"
    assert low.settings["threshold"] == pytest.approx(top - 0.01)


def test_what_stored_scores_cannot_answer(clip, analyzer):
    only_swin = analyze_video(clip, analyzer, AnalysisSettings(detectors=["swin"]), OPTIONS)
    wider = rescore_video(only_swin, analyzer, AnalysisSettings(detectors=["swin", "xception"], threshold=0.4))
    assert wider.not_run == ["xception"] and wider.report.models_used == ["swin"]
    assert wider.report.settings["threshold"] == 0.4                # what can be applied is applied
    assert all(set(f.models) == {"swin"} for f in wider.report.faces)
    none_run = rescore_video(only_swin, analyzer, AnalysisSettings(detectors=["xception"]))
    assert none_run.not_run == ["xception"] and none_run.report is only_swin

    bigger = dataclasses.replace(AnalysisSettings(), min_face_size=only_swin.settings["min_face_size"] + 20)
    faces = rescore_video(only_swin, analyzer, dataclasses.replace(bigger, detectors=["swin"]))
    assert faces.changed == ["min_face_size"]
    assert faces.report.settings["min_face_size"] == only_swin.settings["min_face_size"]   # as analysed
    assert len(faces.report.faces) == len(only_swin.faces)
    plain = rescore_video(only_swin, analyzer, AnalysisSettings(detectors=["swin"], mirror=True))
    assert plain.changed == ["mirror"] and plain.report.settings["mirror"] is False   # scores stay as analysed
    from ui.video_view import rerun_reasons
    assert rerun_reasons(plain, False) == [
        "The mirrored scoring of faces changed since this analysis: faces are found and scored while the video is "
        "analysed, so press **Analyse video** to apply it. The result below was made with it off."]
