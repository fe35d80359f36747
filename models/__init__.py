"""Neural network modules, tokenizers and checkpoint formats."""
