"""Evaluation commands: one module per model, each writing a `report.json` (and figures) to a folder."""
