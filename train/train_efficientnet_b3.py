"""Train the efficientnet_b3 detector: `python -m train.train_efficientnet_b3 --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for efficientnet_b3; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys

from train.engine import main

NAME = "efficientnet_b3"

if __name__ == "__main__":
    sys.exit(main(NAME))
