import subprocess
import sys

import pytest
from PIL import Image

from ganstudio.cli import main

TINY = ["--set", "data.max_images=128", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "train.batch_size=16", "--set", "train.sample_every=2", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["presets"]])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: ganstudio" in capsys.readouterr().out


def test_presets_lists_one_line_each(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("dcgan-fashion ") for line in lines)
    assert len(lines) >= 4


def test_bad_config_value_is_one_line_and_exit_2(capsys):
    assert main(["train", "--set", "optim.lr_g=-1"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr_g = -1" in err and "Traceback" not in err


def test_missing_run_is_exit_1(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "-o", str(tmp_path / "x.png")]) == 1  # a folder, but no checkpoint
    assert "has no checkpoints/last.pt yet: train it" in capsys.readouterr().err


def test_no_arguments_opens_the_studio(monkeypatch):
    import ganstudio.gui.app

    opened = []
    monkeypatch.setattr(ganstudio.gui.app, "run_studio", lambda: opened.append(True) or 0)
    assert main([]) == 0
    assert opened == [True]


def test_train_resume_and_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "3", "--run-dir", str(run)]) == 0
    assert f"run folder: {run}" in capsys.readouterr().out
    assert main(["train", *TINY, "--steps", "3", "--run-dir", str(run)]) == 1  # never overwrite a run
    assert main(["train", "--resume", str(run), "--steps", "5", "--quiet"]) == 0
    assert "step 5" in capsys.readouterr().out

    assert main(["sample", str(run), "-n", "10", "-o", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (4 * 30 + 2, 3 * 30 + 2)
    assert main(["sample", str(run), "-n", "5", "-o", str(tmp_path / "out"), "--seed", "2"]) == 0
    files = sorted((tmp_path / "out").iterdir())
    with Image.open(files[0]) as first:
        assert len(files) == 5 and first.size == (28, 28)


def test_module_entry_point_exit_code():
    result = subprocess.run([sys.executable, "-m", "ganstudio", "train", "--preset", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no preset named 'nope'" in result.stderr


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "ganstudio", "train", *TINY, "--run-dir", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.jsonl").exists():  # training has begun
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out and "saving a checkpoint" in err
    from ganstudio.engine import checkpoint

    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] >= 1
