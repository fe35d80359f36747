"""Trainers: one module per model (`codec`, `semantic`, ...) plus shared pieces (`schedule`)."""
