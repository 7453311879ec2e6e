"""Fakes for the ports, one module per aggregate as in farm_adapters.sql: dict-backed
repositories over a shared store, a unit of work, and the other collaborators' test doubles.

The contract tests run the same assertions against these and the SQL repositories, so the fakes
cannot drift from the real adapters.
"""
