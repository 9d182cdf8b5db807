"""The analysis core: faces -> detectors -> ensemble -> report. No UI imports here."""

# The app's version: every report carries it, the API announces it. Raise it when reports or verdicts change.
__version__ = "1.1.0"
