"""Helpers the tests import: fakes, builders, servers."""
