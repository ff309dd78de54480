"""Datasets -> batches on the training device.

``build_batches(cfg, batch_size=..., device=..., seed=...)`` gives endless training batches (in memory
when the dataset fits ``data.memory_limit_mb``, else streamed); ``load_images(cfg)`` decodes a whole
dataset for metrics. Image folders are prepared once into a cache file (``cache.py``) that later runs
reuse. Every problem a person can fix is raised as :class:`DataError`. Both take ``cancelled=`` (a
callable) and raise :class:`Cancelled` soon after it returns True.
"""

from ganstudio.data.base import Cancelled, DataError, ImageSet
from ganstudio.data.batches import Batches, MapBatches, StreamBatches, TensorBatches, build_batches
from ganstudio.data.sources import held_out, load_images
from ganstudio.data.torchvision_sources import pending_download

__all__ = ["Batches", "Cancelled", "DataError", "ImageSet", "MapBatches", "StreamBatches", "TensorBatches",
           "build_batches", "held_out", "load_images", "pending_download"]
