"""Training throughput: the engine against a classic loop and against the bare maths, in one process.

    python benchmarks/throughput.py [--preset dcgan-fashion] [--steps 200] [--repeats 2] [--device auto]

Three loops train the same model (the preset's G and D), batch size and loss (BCE) on the same images
(the bundled Fashion-MNIST subset):

1. the engine: ``Trainer.run`` (the loop the CLI and the studio drive: device-resident data, figures
   read back once per logging interval) and, beside it, ``Trainer.step()`` (which reads them every step);
2. a plain PyTorch loop in the style of pytorch/examples' dcgan/main.py: a DataLoader over the same
   images with per-item transforms (PIL image -> ToTensor -> Normalize, 2 workers), ``.item()`` every
   step, default optimizers;
3. bare compute: batches already tensors in memory, no logging, the same maths as (2).

It prints images/s of each and the ratios (1)/(2) (target >= 1.2) and (1)/(3) (target >= 0.95).

Then, per ``--precision-presets`` (default dcgan-fashion and resnet-64), the engine in fp32 and bf16
(``train.precision``): images/s, the bf16/fp32 ratio (target >= 1.5), and the fraction of this machine's
peak each reaches: one step's FLOPs (torch's FlopCounterMode, forward and backward) times steps per
second, against the FLOP/s of a large matmul in the same dtype measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.data import DataLoader
from torchvision import transforms

from classic_data import PilImages  # benchmarks/ is on sys.path when run as a script
from ganstudio.config import load_preset
from ganstudio.data import load_images
from ganstudio.engine import Control, Trainer, resolve_device
from ganstudio.families import images_per_step
from ganstudio.models import build_models

WARMUP = 20


# --- (2) the classic loop -----------------------------------------------------------------------------
def classic_loop(config, images: torch.Tensor, device: torch.device, steps: int) -> float:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    loader = DataLoader(PilImages(images, transform), batch_size=config.train.batch_size, shuffle=True,
                        num_workers=2, drop_last=True, persistent_workers=True)
    netG, netD = _models(config, device)
    criterion = nn.BCEWithLogitsLoss()  # D returns logits; the example's BCELoss(sigmoid(.)) in stable form
    optimizerD = torch.optim.Adam(netD.parameters(), lr=config.optim.lr_d, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=config.optim.lr_g, betas=(0.5, 0.999))
    z_dim, done, start = config.model.z_dim, 0, None
    while done < steps + WARMUP:
        for data, _ in loader:
            if done == WARMUP:
                start = time.perf_counter()
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real = data.to(device)
            b_size = real.size(0)
            label = torch.full((b_size,), 1.0, device=device)
            output = netD(real)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = torch.sigmoid(output).mean().item()
            noise = torch.randn(b_size, z_dim, device=device)
            fake = netG(noise)
            label.fill_(0.0)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = torch.sigmoid(output).mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(1.0)
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = torch.sigmoid(output).mean().item()
            optimizerG.step()
            _ = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # the example prints these every step
            done += 1
            if done >= steps + WARMUP:
                break
    return steps * config.train.batch_size / (time.perf_counter() - start)


# --- (3) bare compute ---------------------------------------------------------------------------------
def bare_loop(config, images: torch.Tensor, device: torch.device, steps: int) -> float:
    data = images.to(device).float().div_(127.5).sub_(1)
    batch = config.train.batch_size
    batches = [data[torch.randint(len(data), (batch,))] for _ in range(8)]
    netG, netD = _models(config, device)
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=config.optim.lr_d, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=config.optim.lr_g, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
    for i in range(steps + WARMUP):
        if i == WARMUP:
            _sync(device)
            start = time.perf_counter()
        real = batches[i % len(batches)]
        netD.zero_grad()
        fake = netG(torch.randn(batch, config.model.z_dim, device=device))
        errD = criterion(netD(real), ones) + criterion(netD(fake.detach()), zeros)
        errD.backward()
        optimizerD.step()
        netG.zero_grad()
        criterion(netD(fake), ones).backward()
        optimizerG.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


# --- (1) the engine -----------------------------------------------------------------------------------
def engine_run(config, steps: int) -> float:
    trainer = Trainer(config.updated("train.steps", WARMUP))
    trainer.run(Control())  # warm-up
    trainer.config = trainer.config.updated("train.steps", WARMUP + steps)
    start = time.perf_counter()
    trainer.run(Control())
    return steps * config.train.batch_size / (time.perf_counter() - start)


def engine_step(config, steps: int) -> float:
    trainer = Trainer(config)
    for i in range(steps + WARMUP):
        if i == WARMUP:
            start = time.perf_counter()
        trainer.step()
    return steps * config.train.batch_size / (time.perf_counter() - start)


# --- (4) precisions, and the fraction of peak ------------------------------------------------------------
def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n matmul in ``dtype``: what this machine can do at best in that precision."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def precision_row(preset: str, precision: str, device: str, steps: int) -> dict:
    """images/s of Trainer.run in ``precision`` and the FLOP/s one step's FLOPs imply at that speed."""
    config = load_preset(preset, {"train.precision": precision, "train.device": device, "data.source": "bundled",
                                  "train.log_every": max(1, steps // 4), "train.sample_every": 10**7,
                                  "train.checkpoint_every": 10**7, "train.eval_every": 0})
    trainer = Trainer(config.updated("train.steps", 2))
    trainer.run(Control())  # warm-up
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    trainer.config = trainer.config.updated("train.steps", trainer.global_step + steps)
    start = time.perf_counter()
    trainer.run(Control())
    seconds = (time.perf_counter() - start) / steps
    return {"img/s": images_per_step(config) / seconds, "flop/s": counter.get_total_flops() / seconds}


def precision_table(presets: list[str], device: str, steps: int) -> None:
    dev = resolve_device(device)
    peaks = {p: matmul_peak({"fp32": torch.float32, "bf16": torch.bfloat16}[p], dev) for p in ("fp32", "bf16")}
    print(f"precisions on {dev} (peak of a 2048^2 matmul: fp32 {peaks['fp32'] / 1e9:.0f}, "
          f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s)")
    for preset in presets:
        rows = {p: precision_row(preset, p, device, steps) for p in ("fp32", "bf16")}
        for p, row in rows.items():
            print(f"  {preset:<14} {p}  {row['img/s']:8.1f} img/s   {row['flop/s'] / 1e9:6.1f} GFLOP/s "
                  f"= {row['flop/s'] / peaks[p]:.0%} of the {p} peak")
        print(f"  {preset:<14} bf16 / fp32: {rows['bf16']['img/s'] / rows['fp32']['img/s']:.2f}x  (target >= 1.5)")


def _models(config, device):
    g, d = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
    return g.to(device), d.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan-fashion")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per loop (after 20 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each loop, interleaved; median kept")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision-presets", default="dcgan-fashion,resnet-64",
                        help="presets timed in fp32 and bf16 (empty: skip)")
    parser.add_argument("--precision-steps", type=int, default=8)
    args = parser.parse_args()

    config = load_preset(args.preset, ["loss.name=bce", f"train.device={args.device!r}", "train.log_every=50",
                                       "train.sample_every=1000000", "train.checkpoint_every=1000000"])
    device = resolve_device(args.device)
    images = load_images(config.data).images
    loops = {
        "(1) engine: Trainer.run": lambda: engine_run(config, args.steps),
        "(1b) engine: Trainer.step()": lambda: engine_step(config, args.steps),
        "(2) classic DataLoader loop": lambda: classic_loop(config, images, device, args.steps),
        "(3) bare compute": lambda: bare_loop(config, images, device, args.steps),
    }
    results: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            torch.manual_seed(0)
            results[name].append(loop())
    ips = {name: statistics.median(values) for name, values in results.items()}

    print(f"preset {args.preset}: {config.model.arch} {config.data.image_size}px, batch {config.train.batch_size}, "
          f"BCE, device {device}, {torch.get_num_threads()} threads, {args.steps} steps x {args.repeats} runs")
    for name, value in ips.items():
        runs = ", ".join(f"{v:.0f}" for v in results[name])
        print(f"  {name:<30} {value:8.0f} img/s   (runs: {runs})")
    engine = ips["(1) engine: Trainer.run"]
    print(f"ratio (1)/(2) engine vs classic loop: {engine / ips['(2) classic DataLoader loop']:.2f}x  (target >= 1.2)")
    print(f"ratio (1)/(3) engine vs bare compute: {engine / ips['(3) bare compute']:.2f}x  (target >= 0.95)")
    if args.precision_presets:
        precision_table(args.precision_presets.split(","), args.device, args.precision_steps)


if __name__ == "__main__":
    main()
