"""Recipe schema, step registry, artifacts and lineage, pipeline runner, run directory."""
