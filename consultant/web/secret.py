"""The review app's secret key: from the config, else made once and kept in the data
directory, readable by its owner only, so the embedded default needs no setup."""

from __future__ import annotations

import os
import secrets

from consultant.config import Config

SECRET_FILE = "web-secret"


def secret_key(config: Config) -> str:
    if config.web.secret_key:
        return config.web.secret_key
    path = config.data_dir / SECRET_FILE
    if not path.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
