"""Train the xception detector: `python -m train.train_xception --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for xception; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys

from train.engine import main

NAME = "xception"

if __name__ == "__main__":
    sys.exit(main(NAME))
