"""The engine: the Context a run works in, the graph runner, and measuring an artifact in its
runtime. The one layer that calls runtimes and writes reports; core/ below it knows neither."""
