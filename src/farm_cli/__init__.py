"""The ``farm`` command."""
