"""Data and inference pipelines: corpus -> pairs -> tokens -> training -> evaluation -> inference."""
