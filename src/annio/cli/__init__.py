"""Command-line interface: ``annio info | convert | validate | demo``."""
