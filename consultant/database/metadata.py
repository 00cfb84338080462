"""Every table the migrations manage, in one MetaData: importing the model modules
registers their tables."""

from __future__ import annotations

from sqlmodel import SQLModel

# Importing the model modules registers their tables.
import consultant.accounts.models
import consultant.tickets.models  # noqa: F401

metadata = SQLModel.metadata
