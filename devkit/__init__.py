"""Development helpers (not shipped in the layer): local servers, the demo, the benchmarks."""
