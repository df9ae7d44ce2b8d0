import dataclasses

import pytest

from evoforge.config import Config, load_config
from evoforge.config.loader import all_keys, dump_yaml, help_text
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
        ('run_dir: "runs/\\u202Ex"\n', "202E RIGHT-TO-LEFT OVERRIDE"),
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
    from evoforge.config.loader import differences, to_dict

    a = to_dict(load_config())
    b = to_dict(load_config(None, ["tasks_per_round=8", "search.children=2"]))
    assert differences(a, a) == []
    assert differences(a, b) == ["search.children (3 -> 2)", "tasks_per_round (72 -> 8)"]


def _bomb(levels: int, width: int = 9) -> str:
    """The billion laughs in YAML: each level an anchored list of ``width`` aliases to the last."""
    text = "a0: &a0 [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text + f"rounds: *a{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_fast_in_bounded_memory(tmp_path):
    import time
    import tracemalloc

    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb(9))  # 9**9 = 387 million strings once expanded
    assert len(p.read_bytes()) < 1024
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(p)
    took = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    msg = str(info.value)
    assert "alias bomb" in msg and "bomb.yaml" in msg and "\n" not in msg and len(msg) < 300
    assert took < 1.0 and peak < 20 * 2**20, (took, peak)


def test_error_messages_cut_values_to_a_readable_length(tmp_path):
    p = tmp_path / "c.yaml"
    shared = "rounds: [&a [" + ", ".join(["lol"] * 9) + "]" + ", *a" * 500 + "]\n"  # 5000 values
    for text in (
        shared,
        "rounds: " + "[1, " * 50 + "1" + "]" * 50 + "\n",
        f"rounds: '{'x' * 10**6}'\n",
    ):
        p.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(p)
        assert "expects int" in str(info.value) and len(str(info.value)) < 250, str(info.value)
    p.write_text("rounds: " + "9" * 5000 + "\n")  # past Python's int-from-text limit
    with pytest.raises(ConfigError, match="holds a value YAML cannot read") as info:
        load_config(p)
    assert len(str(info.value)) < 300
    p.write_text("rounds: " + "9" * 4000 + "\n")
    with pytest.raises(
        ConfigError, match="'rounds' must be <= 1000, got an integer of 4000 digits"
    ):
        load_config(p)


@pytest.mark.parametrize(
    "item,message",
    [
        ("rounds=" + "9" * 10**6, "'rounds' expects int, got '99999"),
        ("model=" + "m" * 10**6, "'model' holds 1000000 characters"),
        ("x" * 10**6 + "=1", "unknown config key 'xxxx"),
        ("=1", "unknown config key ''"),
        ("rounds", "override 'rounds' is not key=value"),
        ("\x1b[2J" * 10**4, "is not key=value"),
        ("backend=" + "\u202e" * 100, "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("env=parity\r", "a control character (U+000D)"),
        ("env=pa\x7frity", "a control character (U+007F)"),
        ("env=pa\x85rity", "a control character (U+0085)"),
        ("run_dir=runs/x\u202etxt.exe", "invisible format character (U+202E RIGHT-TO-LEFT"),
        ("run_dir=runs/\u200bx", "U+200B ZERO WIDTH SPACE"),
        ("run_dir=runs/\u2066x", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("run_dir=runs/\ufeffx", "U+FEFF"),
        ("run_dir=runs/a\tb", "a control character (U+0009)"),
    ],
)
def test_huge_and_weird_override_values_are_short_one_line_errors(item, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [item])
    msg = str(info.value)
    assert message in msg, msg
    assert len(msg) < 350 and msg.isprintable(), msg  # no raw control or bidi character


@pytest.mark.parametrize(
    "text,message",
    [
        ("[1, 2]: 3\n", "the key at line 1 is a list; keys are names"),
        ("? {a: 1}\n: 2\n", "the key at line 1 is a mapping"),
        ("search:\n  ? [keep]\n  : 1\n", "the key at line 2 is a list"),
        ("search: &s\n  keep: *s\n", "(a cycle)"),
        ("search:\n  <<: 3\n", "expected a mapping or list of mappings for merging"),
        ("rounds: " + "[" * 5000 + "]" * 5000 + "\n", "nests values too deeply"),
    ],
)
def test_yaml_that_would_crash_is_a_one_line_error(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert message in msg and "c.yaml" in msg and len(msg) < 350 and msg.isprintable(), msg


def test_yaml_merge_keys_work_as_yaml_1_1_and_written_keys_win(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "generation: &gen\n  max_tokens: 64\n  samples: 3\n"
        "critic:\n  <<: {max_tokens: 48, votes: 2}\n  votes: 3\n"
        "refiner:\n  <<: [{max_tokens: 40}]\n"
        "search:\n  <<: {keep: 1}\n"
    )
    c = load_config(p)
    assert (c.generation.max_tokens, c.generation.samples) == (64, 3)
    assert (c.critic.max_tokens, c.critic.votes) == (48, 3)
    assert c.refiner.max_tokens == 40 and c.search.keep == 1
    dup = tmp_path / "d.yaml"
    dup.write_text("critic:\n  <<: {votes: 2}\n  votes: 3\n  votes: 4\n")
    with pytest.raises(ConfigError, match="'votes' appears twice"):
        load_config(dup)


def test_an_override_changes_one_key_even_where_an_alias_shared_its_section(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("generation: &g\n  max_tokens: 64\neval: *g\n")
    c = load_config(p, ["eval.max_tokens=32"])
    assert (c.generation.max_tokens, c.eval.max_tokens) == (64, 32)


def test_differences_cut_huge_values():
    from evoforge.config.loader import differences

    (line,) = differences({"model": "m" * 10**6}, {"model": "tiny"})
    assert line.startswith("model ('mmm") and line.endswith(" -> 'tiny')") and len(line) < 150


def test_an_environment_s_own_defaults_apply_under_what_the_user_sets(tmp_path):
    from evoforge.config.env_defaults import ENV_DEFAULTS

    own = ENV_DEFAULTS["tools"]
    c = load_config(None, ["env=tools"])
    assert c.generation.samples == own["generation.samples"] != Config().generation.samples
    assert c.eval.heldout_tasks == own["eval.heldout_tasks"]
    assert c.search.max_tasks == own["search.max_tasks"]
    # an override, a config file's value, and a file naming the env each win or select
    assert load_config(None, ["env=tools", "generation.samples=8"]).generation.samples == 8
    path = tmp_path / "c.yaml"
    path.write_text("env: tools\ngeneration:\n  samples: 6\n")
    from_file = load_config(path)
    assert from_file.generation.samples == 6 and from_file.search.max_tasks == 0
    # another environment keeps the general defaults
    assert load_config(None, ["env=arithmetic"]).generation.samples == Config().generation.samples
    assert load_config(None).eval.heldout_tasks == Config().eval.heldout_tasks
    # a file that sets a section to a scalar is still the one-line error it was
    path.write_text("env: tools\ngeneration: 3\n")
    with pytest.raises(ConfigError, match="'generation' is a section"):
        load_config(path)


def test_every_environment_default_is_a_valid_key_and_value():
    from evoforge.config.env_defaults import ENV_DEFAULTS

    for name, values in ENV_DEFAULTS.items():
        c = load_config(None, [f"env={name}"])
        d = dataclasses.asdict(c)
        for key, value in values.items():
            node = d
            for part in key.split("."):
                node = node[part]
            assert node == value, (name, key)
