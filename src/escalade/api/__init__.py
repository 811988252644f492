"""HTTP API (FastAPI). Views stay thin: they parse, call the core or a service, and answer."""
