"""Composition root: configuration, database and the `callcenter` command."""
