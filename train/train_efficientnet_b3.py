"""Train the efficientnet_b3 detector: `python -m train.train_efficientnet_b3 --data data_cache/NAME/index.csv [options]`.

Defaults come from the registry's train_defaults for efficientnet_b3; every option is in train/engine.py (--help).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train.engine import main

NAME = "efficientnet_b3"

if __name__ == "__main__":
    sys.exit(main(NAME))
