"""harnvm's benchmark drivers (pyperf suites). Run them with `python -m perf`."""
