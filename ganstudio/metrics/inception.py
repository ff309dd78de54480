"""The Inception-v3 of FID: TensorFlow's 2015-12-05 graph as ported by pytorch-fid.

FID, KID and IS are only comparable with published numbers when computed with this exact network,
which differs from torchvision's ImageNet Inception-v3 in its weights, in 1008 output classes, and in
four pooling details reproduced below. The architecture follows pytorch-fid's ``inception.py``
(https://github.com/mseitzer/pytorch-fid, Apache-2.0, by Maximilian Seitzer), itself following
TensorFlow's FID code; the weights are pytorch-fid's conversion of
http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz.

Input handling matches pytorch-fid: pixels scaled to [0, 1], bilinear resize to 299 x 299
(``align_corners=False``, no antialiasing), then mapped to [-1, 1]. Gray images are repeated to 3 channels.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

from ganstudio.metrics.errors import FeatureError

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the 2015 graph's softmax: 1000 ImageNet classes plus 8 unused outputs

# the layers from the image to pool3, in order (Inception3's own forward also runs dropout and fc)
_POOL3_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                 "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                 "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool")


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 average pool: the zero padding is left out of each average."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionA(InceptionA):
    """InceptionA with TensorFlow's average pool in the pooling branch."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionC(InceptionC):
    """InceptionC with TensorFlow's average pool in the pooling branch."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionE_1(InceptionE):  # the names pytorch-fid and torch-fidelity use
    """First InceptionE (Mixed_7b) with TensorFlow's average pool in the pooling branch."""

    pool = staticmethod(_tf_avg_pool)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(self.pool(x))]


class FIDInceptionE_2(FIDInceptionE_1):
    """Second InceptionE (Mixed_7c): the 2015 graph max-pools here, where the paper average-pools."""

    pool = staticmethod(_max_pool)


class FIDInceptionV3(Inception3):
    """torchvision's Inception3 with the FID blocks and 1008 classes; same state_dict keys as pytorch-fid."""

    def __init__(self) -> None:
        blocks = [None, FIDInceptionA, None, FIDInceptionC, None, FIDInceptionE_1, None]
        super().__init__(num_classes=NUM_CLASSES, aux_logits=False, transform_input=False,
                         init_weights=False, inception_blocks=_fill_defaults(blocks))
        self.Mixed_7c = FIDInceptionE_2(2048)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, 299, 299) in [-1, 1] -> pool3 features (N, 2048)."""
        for name in _POOL3_LAYERS:
            x = getattr(self, name)(x)
        return torch.flatten(x, 1)

    def unbiased_logits(self, pool3: torch.Tensor) -> torch.Tensor:
        """pool3 -> 1008 logits without the fc bias, as the reference Inception Score code computes them
        (openai/improved-gan multiplies pool3 by the softmax weights only; torch-fidelity's
        ``logits_unbiased`` does the same)."""
        return pool3 @ self.fc.weight.T


def _fill_defaults(blocks: list) -> list:
    """Inception3 takes all seven block classes or none; None here means torchvision's own."""
    from torchvision.models import inception as tv

    defaults = [tv.BasicConv2d, tv.InceptionA, tv.InceptionB, tv.InceptionC, tv.InceptionD, tv.InceptionE,
                tv.InceptionAux]
    return [given or default for given, default in zip(blocks, defaults)]


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) -> float (N, 3, 299, 299) in [-1, 1], as pytorch-fid prepares its input."""
    x = images.float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return x.mul_(2.0).sub_(1.0)


def load_fid_inception(weights: Path, device: torch.device | str = "cpu") -> FIDInceptionV3:
    """The network with ``weights`` loaded (``torch.load(weights_only=True)``), in eval mode on ``device``."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise FeatureError(f"cannot read the Inception weights {weights}: {err}; replace the file with "
                           f"{WEIGHTS_NAME} from {WEIGHTS_URL}") from None
    model = FIDInceptionV3()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).splitlines()[0]
        raise FeatureError(f"{weights} does not hold pytorch-fid's Inception-v3 weights ({first}); use "
                           f"{WEIGHTS_NAME} from {WEIGHTS_URL}") from None
    return model.eval().requires_grad_(False).to(device)


def find_weights(explicit: Path | None = None, *, download: bool = True) -> Path:
    """Where the Inception weights are: ``explicit`` (eval.inception_weights) if given, else the torch hub
    cache, downloading into it when online. Raises FeatureError saying what to fetch and where to put it."""
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise FeatureError(f"eval.inception_weights = {str(explicit)!r} does not exist; download "
                               f"{WEIGHTS_URL} and point eval.inception_weights at it")
        return explicit
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    if cached.is_file():
        return cached
    if download:
        try:
            _download(WEIGHTS_URL, cached)
            return cached
        except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
            reason = f"downloading it failed ({err})"
    else:
        reason = "downloads are off"
    raise FeatureError(
        f"the Inception-v3 weights for FID are not on this computer and {reason}. Download {WEIGHTS_URL} "
        f"(about 92 MB) and either save it as {cached} or set eval.inception_weights to its path; or use "
        "eval.extractor = 'classifier' or 'random'")


def _download(url: str, target: Path, timeout: float = 10.0) -> None:
    """Fetch ``url`` into ``target`` (atomically: torch.hub writes a .partial file, then renames).

    ``download_url_to_file`` has no timeout, so an offline machine whose firewall drops packets would
    hang in it; a short connection attempt first turns that into a quick OSError."""
    host = urlparse(url).hostname or ""
    socket.create_connection((host, 443), timeout=timeout).close()
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(target), progress=False)
