"""The service's own database (tickets, messages, mailbox state): SQLite in the embedded
default, PostgreSQL in production, its schema owned by the Alembic migrations here."""
