"""Write resources/datasets/fashion-mnist-10k/: the first 10,000 Fashion-MNIST training images and labels.

Reads the files of Debian's ``dataset-fashion-mnist`` package (apt-get install dataset-fashion-mnist)
or any folder holding train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz, and writes them back
as gzip-compressed IDX with mtime 0, so running it twice gives byte-identical files.

    python scripts/make_bundled_subset.py [--source /usr/share/datasets/fashion-mnist] [--count 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not
from ganstudio.data.idx import read_idx, write_idx  # noqa: E402

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
TARGET = Path(__file__).resolve().parent.parent / "resources" / "datasets" / "fashion-mnist-10k"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEBIAN, help="folder with the full training files")
    parser.add_argument("--count", type=int, default=10_000, help="images to keep (the first ones)")
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    missing = [f for f in FILES if not (args.source / f).is_file()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in {args.source}; on Debian/Ubuntu run "
                         "`apt-get install dataset-fashion-mnist`, or pass --source FOLDER")
    for name in FILES:
        array = read_idx(args.source / name)[: args.count]
        write_idx(args.out / name, array)
        digest = hashlib.sha256((args.out / name).read_bytes()).hexdigest()[:16]
        print(f"{args.out / name}: {array.shape} {array.dtype}, sha256 {digest}…")


if __name__ == "__main__":
    main()
