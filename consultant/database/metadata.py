"""Every table the migrations manage, in one MetaData: importing the model modules
registers their tables."""

from __future__ import annotations

from sqlmodel import SQLModel

import consultant.tickets.models  # noqa: F401  (registers the ticket tables)

metadata = SQLModel.metadata
