"""End-to-end demo (`make demo`); placeholder until the demo is written."""
