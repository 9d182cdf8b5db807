"""Pictures of an analysis: box overlays, plotly charts, feature maps and Grad-CAM heatmaps.

No streamlit import here: the dashboard, the CLI and the API can all draw with these. Feature maps and Grad-CAM ask
the model (detectors.contract: its named stages, its Grad-CAM target) and run on a private copy of it
(`visualization.model_copy`), never on the model shared for inference.
"""
