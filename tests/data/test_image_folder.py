"""Image folders: every mode PIL opens, broken and hostile files skipped and counted, classes from folders."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from ganstudio.config import DataConfig
from ganstudio.data import DataError, load_images
from ganstudio.data.decode import TOO_LARGE, SkippedImage, decode_file


def folder_config(path, **kwargs) -> DataConfig:
    return DataConfig(source="folder", path=path, **kwargs)


def test_mixed_folder_keeps_good_images_and_counts_the_rest(tmp_path, caplog, files):
    good = [
        files.save(tmp_path / "rgb.png", files.noise(40, 30)),
        files.save(tmp_path / "gray.jpg", files.noise(50, 50, 1)),
        files.save(tmp_path / "sub" / "rgba.png", files.noise(20, 20, 4)),
        files.save(tmp_path / "sub" / "deeper" / "wide.bmp", files.noise(10, 90)),
    ]
    files.truncated(tmp_path / "cut.png", files.noise(64, 64))
    files.truncated(tmp_path / "cut.jpg", files.noise(64, 64), quality=95)
    files.corrupt_png(tmp_path / "garbled.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "fake.png").write_bytes(b"\x00" * 300)
    files.bomb_png(tmp_path / "bomb.png", 20_000)
    (tmp_path / ".DS_Store").write_bytes(b"ignored silently")

    with caplog.at_level(logging.WARNING, logger="ganstudio.data.decode"):
        data = load_images(folder_config(tmp_path, image_size=32, channels=3))

    assert data.images.shape == (len(good), 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels is None and data.class_names is None
    [warning] = data.warnings
    assert warning.startswith(f"skipped 6 of 10 files in {tmp_path} (2 not images, 3 corrupt, 1 too large")
    assert [r.getMessage() for r in caplog.records] == [warning]


@pytest.mark.parametrize("side", [20_000, 10_000])  # DecompressionBombError, and the warning below it
def test_decompression_bombs_are_refused_before_decoding(tmp_path, side, files):
    path = files.bomb_png(tmp_path / "bomb.png", side)
    with pytest.raises(SkippedImage) as caught:
        decode_file(path, 28, 1)
    assert caught.value.reason == TOO_LARGE


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path, files):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = files.save(tmp_path / "deep.png", values)
    with Image.open(path) as image:  # PIL's convert("L") would make all but 0 into 255
        assert image.mode.startswith("I")
    pixels = decode_file(path, 4, 1)[0, 0]
    assert pixels.tolist() == [0, 1, 128, 255]


def test_transparency_is_composited_onto_white(tmp_path, files):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere, ...
    rgba[:2, :, 3] = 255  # ... opaque in the top half, fully transparent below
    image = decode_file(files.save(tmp_path / "rgba.png", rgba), 4, 3)
    assert image[:, 0, 0].tolist() == [255, 0, 0] and image[:, 3, 0].tolist() == [255, 255, 255]

    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    image = decode_file(tmp_path / "p.png", 4, 3)
    assert image[:, 0, 0].tolist() == [0, 0, 255] and image[:, 1, 1].tolist() == [255, 255, 255]

    palette.save(tmp_path / "p_opaque.png")
    assert decode_file(tmp_path / "p_opaque.png", 4, 3)[:, 1, 1].tolist() == [0, 0, 0]


def test_channel_conversion(tmp_path, files):
    gray = files.save(tmp_path / "g.png", np.full((8, 8), 77, np.uint8))
    assert decode_file(gray, 8, 3)[:, 0, 0].tolist() == [77, 77, 77]
    color = files.save(tmp_path / "c.png", np.full((8, 8, 3), (200, 100, 50), np.uint8))
    expected = Image.new("RGB", (1, 1), (200, 100, 50)).convert("L").getpixel((0, 0))
    assert decode_file(color, 8, 1)[0, 0, 0].item() == expected


def test_shorter_side_resized_then_centre_cropped(tmp_path, files):
    wide = np.zeros((10, 30), np.uint8)
    wide[:, 10:20] = 255  # a white centre third: the crop keeps exactly that
    image = decode_file(files.save(tmp_path / "wide.png", wide), 10, 1)
    assert image.shape == (1, 10, 10) and image.min().item() == 255


def test_class_subfolders_become_labels(tmp_path, files):
    for i in range(3):
        files.save(tmp_path / "cats" / f"{i}.png", files.noise(8, 8, seed=i))
    files.save(tmp_path / "dogs" / "nested" / "a.png", files.noise(8, 8))
    (tmp_path / "dogs" / "b.txt").write_text("skipped")
    files.save(tmp_path / "loose.png", files.noise(8, 8))
    (tmp_path / "empty").mkdir()
    data = load_images(folder_config(tmp_path))
    assert data.class_names == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 0, 1] and data.labels.dtype == torch.int64
    assert any("ignored 1 files directly in" in w for w in data.warnings)
    assert any("skipped 1 of 5 files" in w for w in data.warnings)


def test_one_subfolder_is_not_a_class_split(tmp_path, files):
    files.save(tmp_path / "only" / "a.png", files.noise(8, 8))
    files.save(tmp_path / "b.png", files.noise(8, 8))
    data = load_images(folder_config(tmp_path))
    assert data.labels is None and len(data.images) == 2


def test_empty_missing_and_unreadable_folders(tmp_path, files):
    with pytest.raises(DataError, match="holds no files"):
        load_images(folder_config(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_images(folder_config(tmp_path / "nope"))
    (tmp_path / "a.txt").write_text("x")
    files.truncated(tmp_path / "b.png", files.noise(32, 32))
    with pytest.raises(DataError, match=r"no readable image in .*skipped 2 of 2 files"):
        load_images(folder_config(tmp_path))


def test_max_images_takes_the_first_files_in_sorted_order(tmp_path, files):
    for i in range(5):
        files.save(tmp_path / f"{i}.png", np.full((8, 8), i * 10, np.uint8))
    data = load_images(folder_config(tmp_path, max_images=3))
    assert data.images[:, 0, 0, 0].tolist() == [0, 10, 20]
    assert len(load_images(folder_config(tmp_path), limit=2).images) == 2
