"""One module per technique; importing a module registers its step (see core.registry)."""
