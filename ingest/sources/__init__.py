"""One folder per source (``ingest.catalog`` finds them; docs/architecture.md, "Adding a
source")."""
