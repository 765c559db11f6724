"""Real datasets that install from package registries (no download at run time)."""
