"""The analysis core: faces -> detectors -> ensemble -> report. No UI imports here."""
