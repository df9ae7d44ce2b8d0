import dataclasses

import pytest

from evoforge.config import Config, load_config
from evoforge.config_loader import all_keys, dump_yaml, help_text
from evoforge.errors import ConfigError


def test_defaults_and_overrides():
    c = load_config(
        None, ["rounds=3", "search.children=2", "backend=hf", "train.lora=true", "train.beta=0.2"]
    )
    assert (c.rounds, c.search.children, c.backend, c.train.lora, c.train.beta) == (
        3,
        2,
        "hf",
        True,
        0.2,
    )
    assert load_config().model == "default"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().rounds = 5  # type: ignore[misc]


def test_unknown_key_names_closest():
    with pytest.raises(ConfigError, match="unknown config key 'roundz'; did you mean 'rounds'"):
        load_config(None, ["roundz=3"])
    with pytest.raises(ConfigError, match="search.childrn.*search.children"):
        load_config(None, ["search.childrn=3"])


def test_wrong_type_names_field_and_type():
    with pytest.raises(ConfigError, match="'rounds' expects int, got 'x'"):
        load_config(None, ["rounds=x"])


def test_choices_are_enforced():
    with pytest.raises(ConfigError, match="backend' must be one of auto, vllm, hf"):
        load_config(None, ["backend=tpu"])


def test_yaml_file_types_and_errors(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("rounds: 4\nsearch:\n  keep: 1\n")
    c = load_config(good, ["rounds=5"])
    assert c.rounds == 5 and c.search.keep == 1
    bad_type = tmp_path / "t.yaml"
    bad_type.write_text("rounds: three\n")
    with pytest.raises(ConfigError, match="'rounds' expects int, got str"):
        load_config(bad_type)
    malformed = tmp_path / "m.yaml"
    malformed.write_text("rounds: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(malformed)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    section = tmp_path / "s.yaml"
    section.write_text("search: 3\n")
    with pytest.raises(ConfigError, match="is a section"):
        load_config(section)


def test_every_field_documented_and_in_help():
    text = help_text(Config)
    for key in all_keys(Config):
        assert key.split(".")[-1] in text

    def walk(cls):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help", "").strip(), f"{cls.__name__}.{f.name} is undocumented"
            if dataclasses.is_dataclass(f.type) or isinstance(f.default_factory, type):
                walk(f.default_factory)

    walk(Config)


def test_dump_roundtrip(tmp_path):
    c = load_config(None, ["rounds=7", "critic.votes=3"])
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(c))
    assert load_config(p) == c
