"""Progress output without a terminal: heartbeat lines during long work, and output that never
ends a run (a broken pipe, a closed stream, characters the stream cannot encode)."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

from evoforge.progress import Progress, say


def test_plain_lines_every_interval_of_long_work(capsys):
    p = Progress(quiet=True, interval=0.3)
    with p.activity("[round 0] train"):
        time.sleep(1.3)  # work that prints nothing of its own
        with p.bar("round 0 generate", 10) as advance:
            advance(4)
            time.sleep(1.0)
    p.close()
    lines = capsys.readouterr().err.splitlines()
    beats = [line for line in lines if line.startswith("[round 0] train: ")]
    assert len(beats) >= 3, lines
    assert any("working" in line for line in beats)
    assert any("round 0 generate 4/10 req" in line for line in beats)
    assert lines[-1].startswith("round 0 generate: 4/10 req in ")
    time.sleep(0.5)
    assert capsys.readouterr().err == ""  # nothing after the work ended and close()


def test_watched_work_shows_what_the_other_process_reports(capsys, tmp_path):
    """Training runs in the trainer actor; the heartbeat shows the step it last wrote, "working"
    while it wrote nothing, and a reader that fails never ends the run."""
    from evoforge.round.stages.train import step_status
    from evoforge.training.trainer import work_dir
    from evoforge.training.trl_adapters import PROGRESS_FILE

    out = str(tmp_path / "model")
    p = Progress(quiet=True, interval=0.3)
    with p.activity("[round 0] train"), p.watch("round0/train", lambda: step_status([out])):
        time.sleep(0.8)
        os.makedirs(work_dir(out))
        (Path(work_dir(out)) / PROGRESS_FILE).write_text(
            '{"phase": "1-dpo", "step": 7, "max_steps": 15}'
        )
        time.sleep(0.8)
    with p.activity("[round 1] train"), p.watch("round1/train", lambda: 1 / 0):
        time.sleep(0.8)
    p.close()
    beats = capsys.readouterr().err.splitlines()
    assert any(b.startswith("[round 0] train: working, ") for b in beats), beats
    assert any(b.startswith("[round 0] train: dpo step 7/15, ") for b in beats), beats
    assert any(b.startswith("[round 1] train: working, ") for b in beats), beats


def test_no_heartbeat_while_lines_keep_coming(capsys):
    p = Progress(quiet=True, interval=0.5)
    with p.activity("[round 0] expand"):
        for _ in range(8):
            p.line("busy")
            time.sleep(0.15)
    p.close()
    assert "[round 0] expand:" not in capsys.readouterr().err


def test_output_never_raises(monkeypatch):
    r, w = os.pipe()
    os.close(r)
    broken = os.fdopen(w, "w")  # writing to it: EPIPE (Python ignores SIGPIPE)
    ascii_only = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    closed = io.StringIO()
    closed.close()
    for stream in (broken, ascii_only, closed):
        monkeypatch.setattr(sys, "stderr", stream)
        p = Progress(quiet=True, interval=0.1)
        with p.activity("运行 ü"), p.bar("运行 bar", 3) as advance:
            advance(3)
            p.line("run directory: runs/运行-ü [/bold]")
            time.sleep(0.3)
        p.close()
    assert say("x", closed) is False
    ascii_only.flush()
    assert "\\u8fd0" in ascii_only.buffer.getvalue().decode()
