"""Copy the files that one installed distribution put into the environment (its RECORD) to DEST, under their
absolute paths: `python venv_delta.py deepfake-check /delta`. The image's `project` stage uses it so that the final
stage can take the project's editable install (a .pth, its finder, the dist-info, bin/deepfake-check) without a
second copy of the whole venv."""
from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: venv_delta.py DISTRIBUTION DEST", file=sys.stderr)
        return 2
    name, dest = argv[0], Path(argv[1])
    dist = metadata.distribution(name)
    copied = 0
    for entry in dist.files or []:
        src = Path(dist.locate_file(entry)).resolve()
        if not src.is_file():
            continue  # e.g. a .pyc that RECORD lists but was not written
        target = dest / src.relative_to(src.anchor)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        copied += 1
    if copied == 0:
        print(f"venv_delta: {name} installed no files", file=sys.stderr)
        return 1
    print(f"venv_delta: {copied} files of {name} -> {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
