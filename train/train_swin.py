"""Train the swin detector: `python -m train.train_swin --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for swin; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys

from train.engine import main

NAME = "swin"

if __name__ == "__main__":
    sys.exit(main(NAME))
