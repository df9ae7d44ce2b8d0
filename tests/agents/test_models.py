import json
import time
from pathlib import Path

import pytest

from evoforge.agents.models import DEFAULT_SHA256, default_gguf_path, resolve_model, sha256_file
from evoforge.errors import ModelError


def test_default_gguf_is_pinned():
    assert sha256_file(default_gguf_path()) == DEFAULT_SHA256


def test_default_and_tiny_resolve_from_cache_fast(default_path, tiny_path):
    t = time.time()
    assert resolve_model("default").path == default_path
    assert resolve_model("tiny").path == tiny_path
    assert time.time() - t < 1.0
    cfg = json.loads((Path(tiny_path) / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2
    assert json.loads((Path(default_path) / "config.json").read_text())["num_hidden_layers"] == 30


def test_tiny_is_deterministic(tmp_path, monkeypatch, tiny_path):
    from safetensors.torch import load_file

    monkeypatch.setenv("EVOFORGE_CACHE", str(tmp_path))
    # the tiny build needs the default's tokenizer: link the converted default into the new cache
    (tmp_path / "models").mkdir()
    default_dir = Path(resolve_model.__globals__["_prepare_default"].__code__.co_filename).parent  # noqa: F841
    from evoforge.agents import models

    src = Path(tiny_path).parent / Path(models._prepare_default(Path(tiny_path).parent)).name
    (tmp_path / "models" / src.name).symlink_to(src)
    again = resolve_model("tiny").path
    assert again != tiny_path
    a, b = (
        load_file(str(Path(tiny_path) / "model.safetensors")),
        load_file(str(Path(again) / "model.safetensors")),
    )
    assert all((a[k] == b[k]).all() for k in a)


def test_bad_specs(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        resolve_model("nope")
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    trunc = tmp_path / "t.gguf"
    trunc.write_bytes(b"GGUF" + b"\0" * 10)
    with pytest.raises(ModelError, match="truncated"):
        resolve_model(str(trunc))
    corrupt = tmp_path / "c.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x07" * 4096)
    with pytest.raises(ModelError, match="not a readable GGUF"):
        resolve_model(str(corrupt), cache_dir=str(tmp_path / "cache"))
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="missing .*weights"):
        resolve_model(str(d))


def test_truncated_copy_of_real_gguf(tmp_path):
    part = tmp_path / "half.gguf"
    with open(default_gguf_path(), "rb") as f:
        part.write_bytes(f.read(5_000_000))
    with pytest.raises(ModelError, match="not a readable GGUF"):
        resolve_model(str(part), cache_dir=str(tmp_path / "cache"))


def test_explicit_cache_dir_wins_over_the_environment(tmp_path, monkeypatch):
    from evoforge.agents.models import cache_root

    monkeypatch.setenv("EVOFORGE_CACHE", str(tmp_path / "from-env"))
    assert cache_root(str(tmp_path / "explicit")) == tmp_path / "explicit" / "models"
    assert cache_root("") == tmp_path / "from-env" / "models"
    assert cache_root(None) == tmp_path / "from-env" / "models"
    monkeypatch.delenv("EVOFORGE_CACHE")
    assert cache_root("") == Path("~/.cache/evoforge/models").expanduser()


def test_a_model_without_chat_template_is_refused(tmp_path, tiny_path):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_path, base)
    assert resolve_model(str(base)).path == str(base.resolve())
    (base / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="has no chat template"):
        resolve_model(str(base))
