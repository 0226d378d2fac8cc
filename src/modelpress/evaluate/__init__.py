"""Task-aware metrics, output comparison, and benchmarking: each in exactly one place."""
