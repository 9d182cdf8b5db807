"""Models: each detector's manifest (architecture, training data, held-out metrics, calibration) and load status."""
from ui.models_view import render_audio_models, render_models_page
from ui.page import page_setup

analyzer, _ = page_setup(
    "Models", "The five detectors: what they are, what they were trained on, how well they did on data they "
    "never saw, and whether their weights loaded.", ":material/fact_check:")
render_models_page(analyzer)
render_audio_models(analyzer.models_dir)
