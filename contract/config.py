"""Settings for app and worker, read from the environment with the IOSIGNAL_ prefix."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("data") / "iosignal.db"
# The worker stores a heartbeat this often; a VM whose newest heartbeat is older than the missed
# beats below is "not alive" (its worker is gone or stuck): one late beat is no death.
HEARTBEAT_INTERVAL_S = 1.0
HEARTBEATS_MISSED_BEFORE_DEAD = 5


class Settings(BaseSettings):
    """One place for every knob; `IOSIGNAL_DATABASE_URL=...` overrides `database_url`."""

    model_config = SettingsConfigDict(env_prefix="IOSIGNAL_", extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DB_PATH}"
    host: str = "127.0.0.1"
    port: int = 8000
    kvm_path: str = "/dev/kvm"
    vm_name: str = "vm0"
    sample_interval_s: float = 1.0
    poll_interval_s: float = 0.05
    # The worker listens for the app's wake-up (NOTIFY on PostgreSQL, a FIFO beside a SQLite
    # file) besides polling; false leaves only the poll (the "before" of `iosignal applybench`).
    wakeup: bool = True
    verdict_timeout_s: float = 5.0
    heartbeat_timeout_s: float = HEARTBEATS_MISSED_BEFORE_DEAD * HEARTBEAT_INTERVAL_S
    raw_retention_h: float = 24.0
    rollup_retention_d: float = 30.0
    admin_token: str | None = None  # stored hashed as editor token "admin" at start
    log_level: str = "info"
    # The host name the observer writes and labels its metrics with (default: the kernel's);
    # a container without the host's UTS namespace sets it (Kubernetes: the node's name).
    hostname: str | None = None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
