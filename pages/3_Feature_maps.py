"""Feature maps: what a detector's layers respond to, and Grad-CAM heatmaps of where every detector looked."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ui.feature_view import render_feature_page  # noqa: E402
from ui.page import page_setup  # noqa: E402

analyzer, settings = page_setup(
    "Feature maps", "Look inside the detectors: the patterns their layers pick up on a face, and the regions that "
    "drove each detector's score.", ":material/psychology:")
render_feature_page(analyzer, settings)
