"""The HTTP API's routers, one per resource: meta (health), search, papers, jobs (ingest jobs),
collections and exports. Each route is a thin wrapper of one Library (or JobRunner) call."""
