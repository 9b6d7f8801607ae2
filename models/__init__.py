"""Built-in adapters. Each module registers itself; the core reaches them only through the
"ovbench.models" entry points declared in pyproject.toml."""
