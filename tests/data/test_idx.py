import gzip

import numpy as np
import pytest

from ganstudio.data import DataError
from ganstudio.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_round_trip(tmp_path, name, dtype):
    array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_gzip_output_is_deterministic(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_bad_magic_names_the_file(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match=r"x\.idx is not an IDX file"):
        read_idx(tmp_path / "x.idx")


def test_truncated_raw_and_gzip(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((10, 28, 28), np.uint8))
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "cut.idx").write_bytes(data[:-100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "cut.idx")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(DataError, match=r"cut\.gz.*damaged"):
        read_idx(tmp_path / "cut.gz")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")
