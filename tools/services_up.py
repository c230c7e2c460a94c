"""Exit 0 when PostgreSQL and Redis answer on their configured addresses, 1 otherwise."""

import os
import socket
import sys
from urllib.parse import urlsplit


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


pg = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
sys.exit(0 if reachable(pg, 5432) and reachable(redis, 6379) else 1)
