"""Tickets: what customers asked, in what thread, and what became of each message."""
