"""Reader and writer for the IDX format of MNIST and its relatives (plain or gzip-compressed).

An IDX file is a 4-byte magic ``00 00 <dtype> <ndim>``, ``ndim`` big-endian uint32 sizes, then the
values, big-endian, in C order. See http://yann.lecun.com/exdb/mnist/ (bottom of the page).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ganstudio.data.base import DataError
from ganstudio.fileio import atomic_write

# IDX type code -> numpy dtype (big-endian, as stored on disk)
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file; gzip is recognised by its magic bytes, not by the file name."""
    return parse_idx(read_idx_bytes(path), str(path))


def read_idx_bytes(path: str | Path) -> bytes:
    """The uncompressed bytes of an IDX file (not yet checked: see :func:`parse_idx`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError; a cut-off gzip is an EOFError
        raise DataError(f"cannot read {path}: {err}; the file is damaged, replace it") from None
    return data


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file; ``name`` is used in error messages."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(
            f"{name} is not an IDX file (magic bytes {data[:4].hex(' ') or 'missing'}; expected "
            f"00 00 <type> <ndim>): is it the right file, or still compressed in another format?")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated: its header is cut off; replace the file")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"{name} is {what}: shape {shape} needs {expected:,} bytes, the file has {len(data):,}; "
            "replace the file")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``array`` as IDX, gzip-compressed when ``compress`` (default: the name ends in ``.gz``).

    The gzip header carries no name and mtime 0, so equal arrays give byte-equal files (for
    committed resources). The write is atomic: a crash leaves the old file or the new one.
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(_CODES)}")
    if array.ndim > 255:
        raise ValueError("IDX stores at most 255 dimensions")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = header + array.astype(_DTYPES[code], copy=False).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        body = gzip.compress(body, compresslevel=9, mtime=0)
    atomic_write(path, lambda f: f.write(body))
