"""pytest-benchmark suite: every backend in ``impls`` timed on every pass of a preset's matrix."""
