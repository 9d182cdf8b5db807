"""Pictures of an analysis: box overlays, plotly charts, feature maps and Grad-CAM heatmaps.

No streamlit import here: the dashboard, the CLI and the API can all draw with these. Everything that hooks a
model (feature maps, Grad-CAM) goes through `visualization.hooks`: one lock per shared model, hooks that only
record the calling thread, and hooks removed before the lock is released.
"""
