"""harnvm's program fuzzer: a generator and a mutator of Harn programs
(`generate`), a worker that runs them in a subprocess (`worker`) and a
campaign runner that attributes deaths and hangs to programs (`runner`).
`python -m tests.fuzz --help` runs a long campaign; `tests/test_fuzz_campaign.py`
runs a bounded one."""
