"""The typed configuration of one training run (`train.engine` fills it from the command line).

Field names are the command line's option names (`--batch-size` -> `batch_size`); `plain()` is what a run stores
in `args.json` and in its checkpoints, and what `--resume` reads back as defaults."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from train.tracking import DEFAULT_EXPERIMENT


@dataclass
class TrainConfig:
    # data
    data: list[str] | None = None             # crop indexes or raw layouts of face crops; NAME=PATH names a source
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    group_regex: str | None = None
    limit: int | None = None                  # at most N samples per split
    samples_per_epoch: int | None = None      # None: the training set's size
    source_balance: str = "sqrt"              # train.data.BALANCE_MODES
    source_weight: list[str] | None = None    # NAME=W
    num_workers: int = 0
    # model and optimisation
    size: int | None = None                   # input size; None: the registry's input size
    pretrained: bool = False
    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    scheduler: str = "cosine"                 # cosine | plateau
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    clip_grad: float = 1.0                    # 0: off
    label_smoothing: float = 0.0
    patience: int = 5                         # 0: never stop early
    amp: str = "auto"                         # auto | on | off (CUDA only)
    precise_bn: int = 16                      # batches for precise BatchNorm statistics (0: off)
    # augmentation and fault injection
    augment: str = "default"                  # train.augment.AUGMENT_LEVELS
    sbi_fraction: float = 0.0
    label_noise: float = 0.0
    input_noise: float = 0.0
    shuffle_labels: bool = False
    # run
    out: str | None = None
    resume: str | None = None
    seed: int = 0
    device: str = "auto"                      # auto | cpu | cuda | mps
    threads: int | None = None
    max_minutes: float | None = None
    eval_batch_size: int | None = None
    convert_to: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    tracking_uri: str | None = None
    run_name: str | None = None
    no_mlflow: bool = False
    no_log_checkpoint: bool = False
    no_progress: bool = False
    name: str = ""                            # the registered detector

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in known})

    def plain(self) -> dict[str, Any]:
        """JSON-ready values, in field order (paths as strings)."""
        def plain(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}
