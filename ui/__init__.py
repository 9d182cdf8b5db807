"""Streamlit helpers shared by the dashboard's pages: settings sidebar, the shared analyzer, uploads, views.

Pages lay out widgets and call these; the analysis itself is the core's (analysis/, video/, visualization/).
"""
