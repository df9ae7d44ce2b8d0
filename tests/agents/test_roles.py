from dataclasses import replace

import pytest

from evoforge.agents.prompts import CRITIC
from evoforge.agents.roles import Roles
from evoforge.config import load_config
from evoforge.errors import ConfigError


def _roles(overrides: list[str]) -> Roles:
    return Roles.from_config(load_config(None, overrides), actor=None, critic=None, refiner=None)


def test_template_file_is_read_once_and_survives_replace(tmp_path):
    path = tmp_path / "critic.txt"
    path.write_text("Judge {instruction} / {response}. Verdict: yes or no.")
    roles = _roles([f"prompts.critic={path}"])
    assert roles.critic_template.startswith("Judge {instruction}")
    # dataclasses.replace runs __post_init__ again on the texts: they must not be read as paths
    again = replace(roles, actor_sampling=replace(roles.actor_sampling, n=1))
    assert again.critic_template == roles.critic_template
    assert replace(_roles([]), seed=3).critic_template == CRITIC


def test_template_without_placeholder_is_a_config_error(tmp_path):
    path = tmp_path / "critic.txt"
    path.write_text("no placeholders here")
    with pytest.raises(ConfigError, match=r"lacks placeholder\(s\) \{instruction\}"):
        _roles([f"prompts.critic={path}"])
