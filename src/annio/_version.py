"""The version of annio, in a module of its own: the command line reads it without the package face."""

__version__ = "0.1.0"
