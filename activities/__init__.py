"""Durable activities: thin adapters, JSON in -> one call into ferry/ -> JSON out."""
