"""The toolkit's own NAS-Bench-201-style benchmark: build it, pack it, query it."""
