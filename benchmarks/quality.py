"""Quality per minute: the default preset against the classic DCGAN loop, for the same wall-time budget.

    python benchmarks/quality.py [--budget 300] [--samples 10000] [--preset dcgan-fashion]

1. ganstudio trains ``--preset`` for ``--budget`` seconds (``Trainer.run`` with ``train.max_time``).
2. The classic 64 px DCGAN of pytorch/examples (written below: batch 64, Adam 2e-4, β1 0.5, BCE, a
   DataLoader with per-item Resize/ToTensor/Normalize) trains on the same images for the same budget.
3. Both generate ``--samples`` images; so does the floor: as many real held-out images (Fashion-MNIST's
   test split from the Debian package), which no generator can beat.

All three are scored against the training images with the bundled classifier's features (64 px images
are resized to 28 px first): FID, KID (± std), IS, precision and recall. Prints the table and the ratio
of the classic loop's FID to the preset's.

    python benchmarks/quality.py --families [--budget 120] [--samples 10000] [--presets a,b,...]

trains every preset (or ``--presets``) for the same budget, one after the other, and prints one table:
images/s and FID/KID/IS/precision/recall of ``--samples`` generated images for the GAN families and the
VAE (prior samples; a cgan's classes are spread evenly), and reconstruction error and ELBO parts on
Fashion-MNIST's test split (never trained on) for the autoencoder families. Ratios are against the
default preset measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from classic_data import PilImages  # benchmarks/ is on sys.path when run as a script
from ganstudio.config import load_preset, preset_names
from ganstudio.data import load_images
from ganstudio.data.idx import read_idx
from ganstudio.engine import Trainer
from ganstudio.engine.inference import eval_images
from ganstudio.families import images_per_step
from ganstudio.metrics.features import make_extractor
from ganstudio.metrics.scores import compute_metrics

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
nz, ngf, ndf, nc = 100, 64, 64, 1


# --- the classic loop (pytorch/examples dcgan/main.py, 1 channel) ---------------------------------------
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
            # state size. (nc) x 64 x 64
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


def classic(images: torch.Tensor, budget: float) -> tuple[nn.Module, int]:
    transform = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
                                    transforms.Normalize((0.5,), (0.5,))])
    dataloader = DataLoader(PilImages(images, transform), batch_size=64, shuffle=True, num_workers=2)
    netG, netD = Generator(), Discriminator()
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        for data, _ in dataloader:
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real = data
            label = torch.full((real.size(0),), 1.0)
            errD_real = criterion(netD(real), label)
            errD_real.backward()
            noise = torch.randn(real.size(0), nz, 1, 1)
            fake = netG(noise)
            label.fill_(0.0)
            errD_fake = criterion(netD(fake.detach()), label)
            errD_fake.backward()
            optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(1.0)
            errG = criterion(netD(fake), label)
            errG.backward()
            optimizerG.step()
            steps += 1
            if time.perf_counter() - start >= budget:
                break
    return netG, steps


@torch.no_grad()
def classic_samples(netG: nn.Module, n: int) -> torch.Tensor:
    netG.eval()
    gen = torch.Generator().manual_seed(4)
    out = torch.cat([netG(torch.randn(min(500, n - i), nz, 1, 1, generator=gen)) for i in range(0, n, 500)])
    return out.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def to_28(images: torch.Tensor) -> torch.Tensor:
    if images.shape[-1] == 28:
        return images
    resized = F.interpolate(images.float(), size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def test_split(n: int) -> torch.Tensor:
    """uint8 (n, 1, 28, 28): Fashion-MNIST's test images, which no preset trains on."""
    return torch.from_numpy(read_idx(DEBIAN / "t10k-images-idx3-ubyte.gz")[:n].copy()).unsqueeze(1)


def families(args) -> None:
    names = args.presets.split(",") if args.presets else preset_names()
    default = "dcgan-fashion"
    names = [default, *(n for n in names if n != default)]  # the reference row first
    extractor = make_extractor("classifier", channels=1, image_size=28)
    train_images = load_images(load_preset(default).data).images
    real = extractor.features(train_images[: args.samples])
    held_out = test_split(args.samples)
    rows = []
    for name in names:
        torch.manual_seed(0)
        config = load_preset(name, [f"train.max_time={args.budget}", "train.device='cpu'"])
        trainer = Trainer(config, Path(args.keep) / name if args.keep else None)
        trainer.run()
        family = trainer.family
        row = {"name": name, "family": family.name, "steps": trainer.global_step,
               "img/s": trainer.global_step * images_per_step(config) / trainer.elapsed}
        if not family.encoder or family.variational:
            images = to_28(eval_images(trainer.sampler, config, args.samples))
            row.update(compute_metrics(real, extractor.features(images), extractor.probabilities(images),
                                       ["fid", "kid", "is", "pr"]))
        if family.encoder:
            row.update(trainer.strategy.held_out_metrics(trainer.state, held_out))
        trainer.close()
        rows.append(row)
        print(f"  {name}: {row['steps']} steps", flush=True)

    print(f"budget {args.budget:.0f} s per preset on {torch.get_num_threads()} CPU threads; {args.samples} samples "
          f"per row vs {len(real)} training images (features: {extractor.name}); reconstruction on "
          f"{len(held_out)} test-split images")
    print(f"{'preset':14} {'family':12} {'steps':>6} {'img/s':>7} {'FID':>7} {'KID':>7} {'IS':>5} {'prec':>5} "
          f"{'recall':>6} {'recon MSE':>9} {'ELBO':>8} {'KL':>6}")
    ref = rows[0]

    def f(row, key, fmt):
        return format(row[key], fmt) if key in row else "-"

    for row in rows:
        print(f"{row['name']:14} {row['family']:12} {row['steps']:6d} {row['img/s']:7.0f} {f(row, 'fid', '7.2f'):>7} "
              f"{f(row, 'kid', '7.4f'):>7} {f(row, 'is', '5.2f'):>5} {f(row, 'precision', '5.3f'):>5} "
              f"{f(row, 'recall', '6.3f'):>6} {f(row, 'recon_mse', '9.4f'):>9} {f(row, 'elbo', '8.1f'):>8} "
              f"{f(row, 'kl', '6.1f'):>6}")
    print(f"ratios against {default} (same run): " + ", ".join(
        f"{r['name']} FID {r['fid'] / ref['fid']:.2f}x img/s {r['img/s'] / ref['img/s']:.2f}x"
        if "fid" in r else f"{r['name']} img/s {r['img/s'] / ref['img/s']:.2f}x" for r in rows[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300, help="training seconds for each loop (default 300)")
    parser.add_argument("--samples", type=int, default=10_000, help="images scored per row (default 10,000)")
    parser.add_argument("--preset", default="dcgan-fashion")
    parser.add_argument("--families", action="store_true", help="one row per preset instead (see above)")
    parser.add_argument("--presets", help="comma-separated presets for --families (default: all)")
    parser.add_argument("--keep", help="--families: write each preset's run folder under this folder")
    args = parser.parse_args()
    if args.families:
        return families(args)
    torch.manual_seed(0)

    config = load_preset(args.preset, [f"train.max_time={args.budget}", "train.device='cpu'"])
    trainer = Trainer(config)
    trainer.run()
    ours = to_28(eval_images(trainer.sampler, config, args.samples))

    train_images = load_images(config.data.model_copy(update={"image_size": 28})).images
    netG, classic_steps = classic(train_images, args.budget)
    theirs = to_28(classic_samples(netG, args.samples))

    held_out = test_split(args.samples)

    extractor = make_extractor("classifier", channels=1, image_size=28)
    real = extractor.features(train_images[: args.samples])
    metrics = ["fid", "kid", "is", "pr"]
    rows = {}
    for name, images in ((f"{args.preset} ({trainer.global_step} steps)", ours),
                         (f"classic 64px DCGAN ({classic_steps} steps)", theirs),
                         ("real held-out (floor)", held_out)):
        rows[name] = compute_metrics(real, extractor.features(images), extractor.probabilities(images), metrics)

    print(f"budget {args.budget:.0f} s per loop on {torch.get_num_threads()} CPU threads; {args.samples} samples "
          f"per row vs {len(real)} training images; features: {extractor.name}")
    print(f"{'':44} {'FID':>8} {'KID':>16} {'IS':>6} {'prec':>6} {'recall':>6}")
    for name, m in rows.items():
        print(f"{name:44} {m['fid']:8.2f} {m['kid']:8.4f}±{m['kid_std']:.4f} {m['is']:6.2f} "
              f"{m['precision']:6.3f} {m['recall']:6.3f}")
    first, second = list(rows.values())[:2]
    print(f"ratio FID classic / FID {args.preset}: {second['fid'] / first['fid']:.2f}x")


if __name__ == "__main__":
    main()
