"""Cloudmarker events plugins: one module per plugin, named as in the tutorial."""
