"""Discovery: the registry, an installed entry point, and module:attr."""

import sys

from evoforge.envs import get_env, list_envs, register
from evoforge.envs.check import check_env


def test_register_by_name():
    from examples.custom_env import AcronymEnv

    register("acronyms-test", AcronymEnv, "acronyms, registered in a test")
    assert get_env("acronyms-test").name == "acronyms"
    assert any(e.name == "acronyms-test" for e in list_envs())


def test_module_attr_path():
    env = get_env("examples.custom_env:AcronymEnv")
    assert check_env(env).ok
    t = env.tasks("train", 1, 0)[0]
    assert env.verify(t, t.metadata["answer"]).passed
    assert "letters" in env.verify(t, "ABCDEFGHIJ").feedback


def test_entry_point(tmp_path, monkeypatch):
    """A distribution that declares [project.entry-points."evoforge.envs"] (as its installed
    dist-info) makes env=acronyms work by name."""
    dist = tmp_path / "acronym_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acronym-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[evoforge.envs]\nacronyms = examples.custom_env:AcronymEnv\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_env("acronyms").name == "acronyms"
    assert any(e.name == "acronyms" and "entry point" in e.description for e in list_envs())
    assert str(tmp_path) in sys.path
