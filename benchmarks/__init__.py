"""The benchmark harness: a pytest plugin that times every backend in ``impls`` over a matrix."""
