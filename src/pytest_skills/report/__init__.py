"""Reporting: typed records in, per-model statistics, the terminal table, JSON and Markdown out.

Nothing in this package imports pytest: records arrive from the pytest layer and
``Settings``-like options are passed in.
"""
