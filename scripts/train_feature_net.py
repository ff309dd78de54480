"""Train the bundled feature network: a small CNN on the full Fashion-MNIST training split.

Writes ``resources/feature_net/fashion_cnn.pt``: ``{"state_dict": fp16 weights, "meta": plain values}``
(loadable with ``torch.load(weights_only=True)``), used by ``make_extractor("classifier", ...)`` for FID,
KID, IS and precision/recall on 1-channel 28/32 px data. Reads the files of Debian's
``dataset-fashion-mnist`` package (apt-get install dataset-fashion-mnist) or any folder holding
{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz. Fixed seed and deterministic algorithms: on the same
torch version and thread count a rerun gives the same weights. About 3 minutes on 2 idle CPU cores (pass --threads 1 on a busy machine).

    python scripts/train_feature_net.py [--source /usr/share/datasets/fashion-mnist] [--epochs 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not
from ganstudio.data.idx import read_idx
from ganstudio.fileio import atomic_write_bytes
from ganstudio.metrics.features import FashionCNN

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
TARGET = Path(__file__).resolve().parent.parent / "resources" / "feature_net" / "fashion_cnn.pt"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
VERSION = "fashion-cnn-v1"


def load_split(source: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float (N, 1, 28, 28) in [-1, 1] (the generators' range) and int64 labels."""
    images = torch.from_numpy(read_idx(source / f"{split}-images-idx3-ubyte.gz").copy())
    labels = torch.from_numpy(read_idx(source / f"{split}-labels-idx1-ubyte.gz").astype("int64"))
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0), labels


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flips and translations by up to ``shift`` px (background -1 fills the gap)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.inference_mode()
def accuracy(model: FashionCNN, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
                  for i in range(0, len(images), batch))
    return correct / len(images)


def train(model: FashionCNN, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace,
          test: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Adam with a one-cycle learning rate; prints the loss and test accuracy after each epoch."""
    generator = torch.Generator().manual_seed(args.seed)  # data order and augmentation, apart from the weights
    steps_per_epoch = (len(images) + args.batch_size - 1) // args.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(images), generator=generator)
        for i in range(0, len(images), args.batch_size):
            index = order[i:i + args.batch_size]
            x = augment(images[index], generator, args.shift).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        acc = accuracy(model, *test)
        print(f"epoch {epoch}/{args.epochs}: loss {total / len(images):.4f}, test accuracy {acc:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)


def half_state_dict(model: FashionCNN) -> dict[str, torch.Tensor]:
    """Floating tensors as fp16 (half the file); integer buffers (BN's batch counters) unchanged."""
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEBIAN, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", type=Path, default=TARGET)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--shift", type=int, default=1, help="random translation in pixels (augmentation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (args.source / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no Fashion-MNIST files in {args.source}; on Debian/Ubuntu run "
                         "`apt-get install dataset-fashion-mnist`, or pass --source FOLDER")
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    images, labels = load_split(args.source, "train")
    test = load_split(args.source, "t10k")
    model = FashionCNN().to(memory_format=torch.channels_last)
    started = time.perf_counter()
    train(model, images, labels, args, test)
    # the accuracy recorded is that of the fp16 weights as shipped, loaded back into float32
    shipped = FashionCNN()
    shipped.load_state_dict({k: v.float() if v.is_floating_point() else v
                             for k, v in half_state_dict(model).items()})
    acc = accuracy(shipped, *test)
    meta = {"version": VERSION, "test_accuracy": acc, "epochs": args.epochs, "seed": args.seed,
            "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "shift": args.shift, "threads": args.threads, "feature_dim": FashionCNN.feature_dim,
            "num_classes": len(CLASSES), "classes": CLASSES, "torch": str(torch.__version__),
            "train_seconds": round(time.perf_counter() - started)}
    buffer = io.BytesIO()
    torch.save({"state_dict": half_state_dict(model), "meta": meta}, buffer)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"test accuracy (fp16 weights) {acc:.4f}; wrote {args.out} ({len(buffer.getvalue()):,} bytes)")


if __name__ == "__main__":
    main()
