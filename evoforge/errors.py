"""The one exception type a user sees as a one-line error.

Anything raised as :class:`EvoforgeError` is printed by the CLI as ``error: <message>`` with a
non-zero exit and no traceback (unless ``--debug``). Messages name the problem and the fix.
"""


class EvoforgeError(Exception):
    """A user-facing error: bad config, bad input, missing model, unreachable cluster, ..."""


class ConfigError(EvoforgeError):
    """The config (YAML or a key=value override) is invalid."""


class ModelError(EvoforgeError):
    """A model could not be found, verified or loaded."""


class PromptTooLongError(EvoforgeError):
    """A prompt does not fit in the model's context window."""
