"""Token caches: corpora of pairs encoded once into memory-mapped token arrays for the cascade."""
