"""The review app: consultants' ticket queue, ticket pages and code lookup in the
browser, and a JSON API (FastAPI, server-rendered Jinja2 pages)."""
