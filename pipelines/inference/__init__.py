"""Inference: turning a vocal into an accompaniment and a mixed song."""
