"""Train the cross_attention detector: `python -m train.train_cross_attention --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for cross_attention; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys

from train.engine import main

NAME = "cross_attention"

if __name__ == "__main__":
    sys.exit(main(NAME))
