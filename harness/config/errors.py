"""The one exception every configuration check raises (its own module: the loader and the range checks
both raise it)."""


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message says where and what was expected."""
