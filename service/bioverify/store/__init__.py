"""Template stores: where enrolled templates live (SQLite embedded default, Redis shared)."""
