"""Command line: ``escalade policy|route|serve|…``. Thin over the core and services."""
