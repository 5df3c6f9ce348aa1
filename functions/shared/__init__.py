"""Cross-cutting pieces every function uses: settings, observability, AWS clients, errors."""
