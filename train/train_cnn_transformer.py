"""Train the cnn_transformer detector: `python -m train.train_cnn_transformer --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for cnn_transformer; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys

from train.engine import main

NAME = "cnn_transformer"

if __name__ == "__main__":
    sys.exit(main(NAME))
