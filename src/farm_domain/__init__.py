"""The farm's domain core: entities, rules, services and the ports they need.

Imports the standard library and attrs only.
"""
