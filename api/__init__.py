"""HTTP routes and other triggers: parse and validate input, start orchestrations, answer with status."""
