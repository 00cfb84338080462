"""Code lookup pages and their JSON API (written next)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
