"""The base layer: errors, audio I/O, dataset listing, device resolution and the CLI frame.

Layering is strict: `core` <- `models` <- `pipelines` <- `service`. Nothing here imports the layers above
(tests/test_layering.py enforces it by parsing every import).
"""
