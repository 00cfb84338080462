"""Consultants' accounts: users, passwords, API tokens and browser sessions."""
