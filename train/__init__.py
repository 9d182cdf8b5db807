"""Training side: data layouts and grouped splits, the face-crop cache, augmentation (incl. self-blended
images), the shared training engine, evaluation, calibration, MLflow tracking and conversion to artifacts.

Each script runs as `python -m train.<script> ...` or `python train/<script>.py ...` from the project root.
"""
