"""Model cards are written from the manifests: every detector gets one with its numbers and the data licences."""
import json
import shutil

from train.model_card import main


def test_model_cards_from_manifests(tiny_models_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    manifest = json.loads((models / "swin" / "manifest.json").read_text())
    assert main(["--models", str(models)]) == 0
    for name in ("xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"):
        card = (models / name / "MODEL_CARD.md").read_text()
        assert f"# Model card: `{name}`" in card
        assert "non-commercial" in card and "Known limits" in card
    swin = (models / "swin" / "MODEL_CARD.md").read_text()
    assert manifest["sha256"] in swin and "64 px" in swin and "224 px" in swin
