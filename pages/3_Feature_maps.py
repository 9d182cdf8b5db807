"""Feature maps: what a detector's layers respond to, and Grad-CAM heatmaps of where every detector looked."""
from ui.feature_view import render_feature_page
from ui.page import page_setup

analyzer, settings = page_setup(
    "Feature maps", "Look inside the detectors: the patterns their layers pick up on a face, and the regions that "
    "drove each detector's score.", ":material/psychology:")
render_feature_page(analyzer, settings)
