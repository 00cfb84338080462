"""Delivery: composing answers from templates, the outbox, and sending at most once."""
