"""Visualisations: Grad-CAM and feature maps on the five tiny detectors (computed on private copies: the shared model
is never run, hooked or changed, also on errors and under concurrent inference), grids, box overlays and plotly
charts."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from conftest import TINY_SIZE

from visualization.charts import model_probability_chart, timeline_chart, video_series, video_timeline_chart
from visualization.feature_maps import capture_feature_maps, feature_grid, grid_picture
from visualization.gradcam import compute_cam, explain_all, explain_crop
from visualization.overlays import (VERDICT_COLORS, cam_overlay, colorize, crop_faces, draw_faces, fit_within,
                                    scale_faces)

NAMES = ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    """The five tiny detectors, saved and loaded for this module. timm zero-initialises some heads, which makes every
    gradient (and so every CAM) zero: those all-zero tensors get small random values before saving, so the maps have
    something to show and the artifacts' scores (ONNX Runtime) and their PyTorch models agree."""
    from detectors.artifacts import load_detectors, save_artifact
    from detectors.registry import build_model, model_kwargs_for
    folder = tmp_path_factory.mktemp("visualised_models")
    torch.manual_seed(0)
    models = {name: build_model(name, pretrained=False, **model_kwargs_for(name, TINY_SIZE)).eval() for name in NAMES}
    torch.manual_seed(2)   # a draw for which no tiny random model's Grad-CAM is flat on the test crop
    for name, model in models.items():
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())   # as stored: tensors that underflow in float16 are zeros too
                if p.ndim >= 1 and torch.count_nonzero(p) == 0:
                    p.normal_(0, 0.05)
        save_artifact(model, name, folder, input_size=TINY_SIZE, model_kwargs=model_kwargs_for(name, TINY_SIZE),
                      temperature=1.5)
    loaded, errors = load_detectors(folder)
    assert not errors and sorted(loaded) == sorted(NAMES)
    return loaded


@pytest.fixture(scope="module")
def crop(astronaut_rgb) -> np.ndarray:
    return np.ascontiguousarray(astronaut_rgb[30:230, 140:340])


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(getattr(m, attr)) for m in model.modules() for attr in HOOK_DICTS)


def _snapshot(model: torch.nn.Module) -> tuple[list[bool], dict[str, torch.Tensor]]:
    return [p.requires_grad for p in model.parameters()], {k: v.clone() for k, v in model.state_dict().items()}


def _assert_pristine(model: torch.nn.Module, snapshot: tuple[list[bool], dict[str, torch.Tensor]]) -> None:
    flags, state = snapshot
    for module in model.modules():
        for attr in HOOK_DICTS:
            assert len(getattr(module, attr)) == 0, f"{type(module).__name__}.{attr} still holds a hook"
    assert all(p.grad is None for p in model.parameters()), "a gradient leaked into the shared model"
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not model.training
    now = model.state_dict()
    assert now.keys() == state.keys() and all(torch.equal(now[k], v) for k, v in state.items())


@contextmanager
def modules_run():
    """The ids of every module that runs a forward pass meanwhile (a global hook: no model is touched)."""
    seen: set[int] = set()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, _args: seen.add(id(m)))
    try:
        yield seen
    finally:
        handle.remove()


@pytest.mark.parametrize("name", NAMES)
def test_gradcam_gives_a_unit_range_map_for_every_architecture(detectors, crop, name):
    d = detectors[name]
    before = _snapshot(d.model)
    result = explain_crop(d, crop, target="fake")
    assert result.cam.shape == (d.input_size, d.input_size)
    assert result.cam.dtype == np.float32
    assert float(result.cam.min()) == pytest.approx(0.0, abs=1e-6)
    assert float(result.cam.max()) == pytest.approx(1.0, abs=1e-5), "the map is flat: no gradient reached the layer"
    assert result.overlay.shape == crop.shape and result.overlay.dtype == np.uint8
    assert result.layer == d.model.cam_target().name
    # The CAM's forward pass is the detector's own: same logit as plain inference.
    assert result.logit == pytest.approx(float(d.logits([crop])[0]), abs=1e-4)
    assert result.probability == pytest.approx(float(d.calibrate([result.logit])[0]), abs=1e-6)
    _assert_pristine(d.model, before)


def test_explanations_never_run_the_shared_model(detectors, crop):
    d = detectors["cnn_transformer"]
    shared = {id(m) for m in d.model.modules()}
    with modules_run() as seen:
        explain_crop(d, crop)
        capture_feature_maps(d, crop)
    assert seen and not seen & shared, "an explanation ran a module of the shared inference model"
    with modules_run() as seen, torch.inference_mode():
        d.model(d.preprocess([crop]))
    assert id(d.model) in seen      # the probe does see the shared model when it runs


def test_gradcam_real_target_differs_from_fake(detectors, crop):
    d = detectors["xception"]
    fake = explain_crop(d, crop, target="fake").cam
    real = explain_crop(d, crop, target="real").cam
    assert not np.allclose(fake, real, atol=1e-3)


def test_gradcam_errors_leave_the_shared_model_as_it_was(detectors, crop, monkeypatch):
    from detectors.contract import CamTarget

    d = detectors["swin"]
    before = _snapshot(d.model)
    x = d.preprocess([crop])
    with pytest.raises(ValueError, match="target"):
        compute_cam(d.model, x, target="maybe")
    with pytest.raises(ValueError, match="CAM method"):
        compute_cam(d.model, x, method="magic")

    def broken_reshape(_tensor):
        raise RuntimeError("reshape failed")

    def broken_target(model):
        return CamTarget("layers.3", (model.layers[3],), broken_reshape)

    monkeypatch.setattr(type(d.model), "cam_target", broken_target)   # the copy shares the class
    with pytest.raises(RuntimeError, match="reshape failed"):
        compute_cam(d.model, x)
    monkeypatch.undo()
    _assert_pristine(d.model, before)
    assert compute_cam(d.model, x).layer == "layers.3.blocks.1.norm1"


def test_gradcam_is_unaffected_by_concurrent_inference_and_other_cams(detectors, crop):
    d = detectors["cnn_transformer"]
    before = _snapshot(d.model)
    alone = explain_crop(d, crop).cam
    other = np.ascontiguousarray(crop[::-1])
    stop = threading.Event()
    errors: list[BaseException] = []

    def infer():
        try:
            while not stop.is_set():
                d.logits([other, other])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    results: list[np.ndarray] = []

    def cam():
        try:
            results.append(explain_crop(d, crop).cam)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=infer) for _ in range(2)]
    cams = [threading.Thread(target=cam) for _ in range(3)]
    for t in workers + cams:
        t.start()
    for t in cams:
        t.join(timeout=120)
    stop.set()
    for t in workers:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == 3
    for r in results:
        np.testing.assert_allclose(r, alone, atol=1e-5)
    _assert_pristine(d.model, before)


def test_explain_all_covers_every_detector(detectors, crop):
    results, errors = explain_all(detectors, crop, method="Grad-CAM++")
    assert not errors
    assert sorted(results) == sorted(NAMES)
    assert all(r.method == "Grad-CAM++" and r.cam.min() >= 0 and r.cam.max() <= 1 for r in results.values())
    assert all(hook_count(d.model) == 0 for d in detectors.values())


@pytest.mark.parametrize("name", NAMES)
def test_feature_maps_are_the_models_stages(detectors, crop, name):
    d = detectors[name]
    before = _snapshot(d.model)
    maps = capture_feature_maps(d, crop)
    with torch.inference_mode():
        expected = d.model.forward_intermediates(d.preprocess([crop]))
    assert list(maps) == list(expected) and 3 <= len(maps) <= 5
    sides = []
    for layer, fm in maps.items():
        assert fm.layer == layer and fm.maps.ndim == 3 and fm.maps.dtype == np.float32, layer
        assert fm.maps.shape == tuple(expected[layer].shape[1:]) and np.isfinite(fm.maps).all()
        np.testing.assert_allclose(fm.maps, expected[layer][0].numpy(), rtol=1e-5, atol=1e-5)
        sides.append(fm.maps.shape[1])
    assert sides == sorted(sides, reverse=True), f"stages not shallow to deep: {sides}"
    picked = capture_feature_maps(d, crop, [list(maps)[-1]])
    assert list(picked) == [list(maps)[-1]]
    with pytest.raises(ValueError, match=f"{name} has no stage 'nope'; its stages: "):
        capture_feature_maps(d, crop, ["nope"])
    _assert_pristine(d.model, before)


def test_swin_stages_are_channels_first(detectors, crop):
    """timm's Swin computes channels-last; the model hands the viewer (C, H, W) maps."""
    maps = capture_feature_maps(detectors["swin"], crop)
    assert [m.maps.shape for m in maps.values()] == [(96, 16, 16), (192, 8, 8), (384, 4, 4), (768, 2, 2)]


def test_feature_grid_shape_order_and_scaling():
    rng = np.random.default_rng(0)
    maps = rng.random((10, 5, 7)).astype(np.float32)
    maps[3] += 10.0                    # the most active channel comes first
    maps[6] = 2.0                      # a constant map becomes zeros, not NaN
    grid = feature_grid(maps, max_maps=9, pad=1)
    assert (grid.rows, grid.cols, grid.tile) == (3, 3, (5, 7))
    assert grid.image.shape == (3 * 5 + 2, 3 * 7 + 2)
    assert grid.channels[0] == 3 and len(grid.channels) == 9 and len(set(grid.channels)) == 9
    assert grid.image.min() >= 0 and grid.image.max() <= 1 and np.isfinite(grid.image).all()
    slot = grid.channels.index(6)
    r, q = divmod(slot, 3)
    assert np.all(grid.image[r * 6:r * 6 + 5, q * 8:q * 8 + 7] == 0)
    picture = grid_picture(grid, min_side=100)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and max(picture.shape[:2]) >= 100
    assert feature_grid(maps, max_maps=4).image.shape == (2 * 5 + 1, 2 * 7 + 1)
    with pytest.raises(ValueError):
        feature_grid(maps[0])


def test_draw_faces_colours_boxes_by_verdict_and_leaves_the_input_alone():
    rgb = np.full((200, 300, 3), 128, dtype=np.uint8)
    faces = [{"box": [50, 60, 120, 150], "verdict": "FAKE", "probability": 0.91},
             {"box": [180, 40, 260, 130], "verdict": "REAL", "probability": 0.05}]
    out = draw_faces(rgb, faces)
    assert out.shape == rgb.shape and np.all(rgb == 128)
    red = tuple(int(VERDICT_COLORS["FAKE"][i:i + 2], 16) for i in (1, 3, 5))
    green = tuple(int(VERDICT_COLORS["REAL"][i:i + 2], 16) for i in (1, 3, 5))
    assert tuple(out[150, 85]) == red            # bottom edge of the first box
    assert tuple(out[130, 220]) == green         # bottom edge of the second
    assert tuple(out[100, 85]) == (128, 128, 128)  # inside a box: untouched
    assert np.any(out[30:60, 50:120] != 128)     # the label above the first box
    small, scale = fit_within(np.zeros((1000, 2000, 3), np.uint8), 500)
    assert small.shape == (250, 500, 3) and scale == 0.25
    assert scale_faces(faces, 0.5)[0]["box"] == [25.0, 30.0, 60.0, 75.0]


def test_crop_faces_matches_the_analysis_crop(astronaut_rgb):
    from analysis.faces import square_crop

    box = [180.0, 40.0, 290.0, 180.0]
    crop = crop_faces(astronaut_rgb, [{"box": box}], margin=0.3, size=None)[0]
    np.testing.assert_array_equal(crop, square_crop(astronaut_rgb, box, 0.3))
    assert crop_faces(astronaut_rgb, [{"box": box}], size=64)[0].shape == (64, 64, 3)


def test_cam_overlay_and_colorize():
    rgb = np.full((40, 60, 3), 200, dtype=np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[:, 4:] = 1.0
    out = cam_overlay(rgb, cam, alpha=0.5)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert out[20, 55, 0] > out[20, 55, 2]       # hot side is red (jet)
    assert out[20, 5, 2] > out[20, 5, 0]         # cold side is blue
    assert np.array_equal(cam_overlay(rgb, cam, alpha=0.0), rgb)
    with pytest.raises(ValueError):
        cam_overlay(rgb, cam, alpha=2)
    assert colorize(np.linspace(0, 1, 12).reshape(3, 4)).shape == (3, 4, 3)


def test_model_probability_chart_colours_and_decision_lines():
    fig = model_probability_chart({"a": 0.9, "b": 0.55, "c": 0.1}, 0.7, threshold=0.5, band=0.1)
    bar = fig.data[0]
    assert list(bar.x) == [0.9, 0.55, 0.1, 0.7]
    assert list(bar.marker.color) == [VERDICT_COLORS["FAKE"], VERDICT_COLORS["UNCERTAIN"], VERDICT_COLORS["REAL"],
                                      VERDICT_COLORS["FAKE"]]
    shapes = fig.layout.shapes
    assert any(s.type == "line" and s.x0 == 0.5 for s in shapes)                   # threshold
    assert any(s.type == "rect" and s.x0 == pytest.approx(0.4) and s.x1 == pytest.approx(0.6) for s in shapes)
    assert [a.text for a in fig.layout.annotations if a.xref == "paper"][:3] == ["90%", "55%", "10%"]


def test_timeline_chart_traces_and_gaps():
    fig = timeline_chart([0.0, 0.5, 1.0], {"a": [0.2, None, 0.8], "b": [0.3, None, 0.7]}, [0.25, None, 0.75],
                         threshold=0.5, band=0.05, current_time=0.5)
    assert [t.name for t in fig.data] == ["a", "b", "Ensemble"]
    assert fig.data[2].y[1] is None
    assert any(s.type == "line" and s.x0 == 0.5 and s.xref == "x" for s in fig.layout.shapes)   # shown frame
    assert any(s.type == "line" and s.y0 == 0.5 for s in fig.layout.shapes)                     # threshold


def _video_report():
    from analysis.report import FaceResult
    from video.report import FrameFace, FrameResult, TrackResult, VideoReport

    def face(p, track, models):
        return FrameFace.from_result(FaceResult(box=[10, 10, 50, 50], score=0.99, models=models, probability=p,
                                                verdict="FAKE" if p >= 0.6 else "REAL", agreement=0.9, size=40),
                                     track=track)

    frames = [FrameResult(index=0, time=0.0, faces=[face(0.2, 0, {"x": 0.1, "y": 0.3}),
                                                    face(0.9, 1, {"x": 0.8, "y": 0.95})]),
              FrameResult(index=5, time=0.2, faces=[]),
              FrameResult(index=10, time=0.4, faces=[face(0.3, 0, {"x": 0.25, "y": 0.35})])]
    return VideoReport(path="clip.mp4", frames=frames, models_used=["x", "y"],
                       tracks=[TrackResult(id=0, frames=[0, 10]), TrackResult(id=1, frames=[0])])


def test_video_series_picks_the_most_suspicious_face_or_one_person():
    report = _video_report()
    times, series, ensemble = video_series(report)
    assert times == [0.0, 0.2, 0.4] and ensemble == [0.9, None, 0.3]
    assert series == {"x": [0.8, None, 0.25], "y": [0.95, None, 0.35]}
    _, series0, ensemble0 = video_series(report, track=0)
    assert ensemble0 == [0.2, None, 0.3] and series0["x"] == [0.1, None, 0.25]
    fig = video_timeline_chart(report, current_time=0.4)
    assert len(fig.data) == 3


def test_frames_csv_has_a_row_per_face_and_per_empty_frame():
    import csv
    import io

    from ui.exports import frames_csv, report_json

    report = _video_report()
    rows = list(csv.DictReader(io.StringIO(frames_csv(report).decode())))
    assert len(rows) == 4
    assert rows[0]["person"] == "1" and rows[1]["person"] == "2" and rows[1]["p_fake_ensemble"] == "0.90000"
    assert rows[2]["frame"] == "5" and rows[2]["p_fake_x"] == ""
    assert b'"clip.mp4"' in report_json(report)


def test_model_probability_chart_greys_out_detectors_that_do_not_vote_and_shows_weights_and_votes():
    not_voting = [{"name": "swin", "reason": "validation AUC below 0.75 on dfdc (0.501)"}]
    fig = model_probability_chart({"a": 0.9, "b": 0.1}, 0.5, threshold=0.5, band=0.1,
                                  weights={"a": 0.75, "b": 0.25}, not_voting=not_voting,
                                  votes={"fake": 1, "real": 1, "abstain": 0})
    bar = fig.data[0]
    assert list(bar.y) == ["<span style='color:#9e9e9e'>swin · not voting</span>", "a · weight 75%", "b · weight 25%",
                           "<b>Majority vote</b>"]
    assert bar.x[0] == 0 and bar.marker.color[0] == "#bdbdbd"
    notes = [a.text for a in fig.layout.annotations]
    assert "not voting: validation AUC below 0.75 on dfdc (0.501)" in notes
    assert "<b>1/2 fake</b>" in notes and "<b>50%</b>" not in notes
    plain = model_probability_chart({"a": 0.9}, 0.9, not_voting=[{"name": "a", "reason": "x"}])
    assert list(plain.data[0].y) == ["a", "<b>Ensemble</b>"]       # a detector that did score is not greyed


def test_a_box_past_the_picture_edge_is_drawn_inside_it():
    """A tight crop: the face detector's box reaches past every border; the outline must stay visible."""
    rgb = np.full((224, 224, 3), 128, dtype=np.uint8)
    out = draw_faces(rgb, [{"box": [-30.0, -12.0, 250.0, 260.0], "verdict": "FAKE", "probability": 0.9}], labels=[""])
    red = tuple(int(VERDICT_COLORS["FAKE"][i:i + 2], 16) for i in (1, 3, 5))
    for y, x in ((0, 112), (223, 112), (112, 0), (112, 223)):
        assert tuple(out[y, x]) == red, (y, x)
    assert tuple(out[112, 112]) == (128, 128, 128)


# ------------------------------------------------------------------- heatmaps over the photo (visualization.heatmaps)
def test_heatmap_overlay_on_a_real_photo_changes_only_the_face_boxes(detectors, astronaut_rgb):
    import cv2

    from analysis.faces import FaceFinder
    from visualization.heatmaps import CAM_SIDE, face_cams, heatmap_overlay, paste_cam, weighted_cam

    faces = FaceFinder().detect(astronaut_rgb)
    assert len(faces) == 1
    crops = crop_faces(astronaut_rgb, faces, margin=0.3, size=256)
    found = face_cams(detectors, crops[0], NAMES)
    assert not found.errors and sorted(found.cams) == sorted(NAMES)
    assert all(c.shape == (CAM_SIDE, CAM_SIDE) and 0 <= c.min() and c.max() <= 1 for c in found.cams.values())
    ensemble = weighted_cam(found.cams, {"swin": 3.0, "xception": 1.0})   # only the detectors with a weight count
    np.testing.assert_allclose(ensemble, 0.75 * found.cams["swin"] + 0.25 * found.cams["xception"], atol=1e-6)

    boxes = [f.box for f in faces]
    out = heatmap_overlay(astronaut_rgb, boxes, [ensemble], margin=0.3)
    assert out.shape == astronaut_rgb.shape and out.dtype == np.uint8
    x1, y1, x2, y2 = (int(round(v)) for v in faces[0].box)
    inside = np.zeros(astronaut_rgb.shape[:2], bool)
    inside[max(0, y1 - 1):y2 + 1, max(0, x1 - 1):x2 + 1] = True
    assert np.array_equal(out[~inside], astronaut_rgb[~inside]), "a pixel outside the face box changed"
    assert (out[y1 + 2:y2 - 2, x1 + 2:x2 - 2] != astronaut_rgb[y1 + 2:y2 - 2, x1 + 2:x2 - 2]).any(axis=-1).mean() > 0.9

    # the crop's heatmap lands where the crop came from: a hot quarter of the crop is that quarter around the box
    hot = np.zeros((CAM_SIDE, CAM_SIDE), np.float32)
    hot[:, CAM_SIDE // 2:] = 1.0                                      # the crop's right half
    heat, mask = paste_cam(astronaut_rgb.shape[:2], faces[0].box, hot, margin=0.3)
    cx = (faces[0].box[0] + faces[0].box[2]) / 2
    assert mask.sum() > 0 and heat[mask].max() == 1.0
    cols = np.nonzero(mask.any(axis=0))[0]
    assert heat[mask.any(axis=1)][:, cols[cols > cx + 2]].min() > 0.9 and heat[:, cols[cols < cx - 2]].max() < 0.1
    # the picture at another scale (the dashboard's downscaled copy): same place, scaled boxes
    small = cv2.resize(astronaut_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    half = heatmap_overlay(small, [[v / 2 for v in faces[0].box]], [ensemble], margin=0.3)
    assert half.shape == small.shape and not np.array_equal(half, small)
    with pytest.raises(ValueError):
        heatmap_overlay(astronaut_rgb, boxes, [], margin=0.3)
    assert weighted_cam({}, {}) is None
