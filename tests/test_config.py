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


def _numeric_fields(cls=Config, prefix=""):
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(
            f.default_factory if f.default_factory is not dataclasses.MISSING else None
        ):
            yield from _numeric_fields(f.default_factory, f"{prefix}{f.name}.")
        elif f.type in ("int", "float", int, float):
            yield prefix + f.name, f


def test_every_numeric_field_is_bounded_on_both_sides():
    fields = dict(_numeric_fields())
    assert "seed" in fields and "search.children" in fields
    for key, f in fields.items():
        assert {"ge", "gt"} & set(f.metadata), f"{key} has no lower bound"
        assert "le" in f.metadata, f"{key} has no upper bound"


@pytest.mark.parametrize(
    "item,message",
    [
        ("rounds=0", "'rounds' must be >= 1"),
        ("rounds=100000", "'rounds' must be <= 1000"),
        ("tasks_per_round=0", "'tasks_per_round' must be >= 1"),
        ("critic.votes=0", "'critic.votes' must be >= 1"),
        ("serving.replicas=0", "'serving.replicas' must be >= 1"),
        ("generation.top_p=0", "'generation.top_p' must be > 0.0"),
        ("generation.top_p=1.5", "<= 1.0"),
        ("train.learning_rate=0", "must be > 0.0"),
        ("train.learning_rate=nan", "must be a finite number"),
        ("train.learning_rate=inf", "must be a finite number"),
        ("train.learning_rate=-inf", "must be a finite number"),
        ("search.threshold=1e999", "must be a finite number"),
        ("seed=4294967296", "'seed' must be <= 2147483647"),
        ("seed=-1", "'seed' must be >= 0"),
        ("eval.heldout_tasks=0", ">= 1"),
        ("verify_timeout_s=-1", "'verify_timeout_s' must be >= 0.0"),
        ("progress_interval_s=0", "'progress_interval_s' must be >= 0.1"),
        ("serving.max_model_len=99999999999", "<= 1048576"),
        ("run_dir=runs/a\nb", "control character"),
        ("env=parity\x00", "control character"),
        ("train.workers=2000", "'train.workers' must be <= 1024"),
        ("train.checkpoint_steps=-1", "'train.checkpoint_steps' must be >= 0"),
        ("serving.gpu_share=0.99", "'serving.gpu_share' must be <= 0.95"),
        ("report_to=tensorboard,mlflow,tensorboard", "'report_to' names 'tensorboard' twice"),
        ("report_to=neptune", "comma-separated list of tensorboard, wandb, mlflow"),
    ],
)
def test_out_of_range_values_are_one_line_errors(item, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [item])
    assert message in str(info.value) and "\n" not in str(info.value).replace("\\n", "")


def test_yaml_nan_inf_duplicates_and_huge_numbers(tmp_path):
    for text, message in [
        ("train:\n  learning_rate: .nan\n", "finite number"),
        ("train:\n  learning_rate: .inf\n", "finite number"),
        ("rounds: 2\nrounds: 3\n", "'rounds' appears twice (line 2)"),
        ("search:\n  keep: 1\n  keep: 2\n", "'keep' appears twice"),
        ("rounds: 100000000000000000000000\n", "'rounds' must be <= 1000"),
        ("rounds: true\n", "'rounds' expects int"),
        ("[1, 2]\n", "must hold a mapping"),
    ]:
        p = tmp_path / "c.yaml"
        p.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_config(p)


@pytest.mark.parametrize(
    "items,message",
    [
        (
            ["train.algorithm=grpo", "train.batch_size=6", "train.grpo_generations=4"],
            "one must divide the other",
        ),
        (["train.algorithm=grpo", "train.batch_size=3"], "one must divide the other"),
        (["generation.max_tokens=2048", "serving.max_model_len=2048"], "generation.max_tokens"),
        (["critic.max_tokens=600", "serving.max_model_len=512"], "critic.max_tokens"),
        (["eval.max_tokens=4096"], "eval.max_tokens"),
    ],
)
def test_settings_that_cannot_work_together(items, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, items)


def test_grpo_batches_that_divide_are_accepted():
    for b, g in ((2, 4), (8, 4), (4, 4), (3, 6)):
        load_config(
            None, ["train.algorithm=grpo", f"train.batch_size={b}", f"train.grpo_generations={g}"]
        )


def test_differences_name_each_changed_key():
    from evoforge.config_loader import differences, to_dict

    a = to_dict(load_config())
    b = to_dict(load_config(None, ["tasks_per_round=8", "search.children=2"]))
    assert differences(a, a) == []
    assert differences(a, b) == ["search.children (3 -> 2)", "tasks_per_round (72 -> 8)"]
