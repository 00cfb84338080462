"""The local code database: official code sets, their releases, lookup and search."""
