"""Models: each detector's manifest (architecture, training data, held-out metrics, calibration) and load status."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ui.models_view import render_models_page  # noqa: E402
from ui.page import page_setup  # noqa: E402

analyzer, _ = page_setup(
    "Models", "The five detectors: what they are, what they were trained on, how well they did on data they "
    "never saw, and whether their weights loaded.", ":material/fact_check:")
render_models_page(analyzer)
