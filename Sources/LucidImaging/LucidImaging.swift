// LucidImaging — see docs/ARCHITECTURE.md.
