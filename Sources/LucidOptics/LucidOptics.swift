// LucidOptics — see docs/ARCHITECTURE.md.
