"""The load benchmark's figures are real and consistent (a small run; speed is not asserted)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from benchmarks.loadbench import run_loadbench
from contract.db import make_engine
from contract.models import Sample, Vm


def test_small_loadbench_counts_every_sample_and_cleans_up(db_url: str, kvm_path: str) -> None:
    result = run_loadbench(
        db_url, registrations=40, duration_s=3.0, interval_s=0.5, kvm_path=kvm_path
    )
    assert result["ticks"] >= 1 and result["machine_state"] == "running"
    # every tick wrote one sample per registration, plus the last collect on stop
    assert result["rows"] == result["samples_written"] == 40 * (result["ticks"] + 1)
    assert result["signals"] > 0  # the guest rang the registrations
    assert result["lock_errors"] == 0 and result["write_errors"] == 0
    # one packed row per tick; at this size the table and its two indexes (the primary key, the
    # host view's feed/time index) are their minimum of pages (6 of 8 KiB on PostgreSQL)
    assert 0 < result["bytes"] <= 49152 and result["series"] == 40
    assert result["busy_samples"] <= result["rows"] and result["vms"] == 1
    assert result["reader"]["reads"] >= 1
    engine = make_engine(db_url)
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Vm)) == 0
        assert db.scalar(select(func.count()).select_from(Sample)) == 0
    engine.dispose()


def test_a_fleet_of_vms_writes_into_one_database(db_url: str, kvm_path: str) -> None:
    result = run_loadbench(
        db_url, registrations=20, duration_s=3.0, interval_s=0.5, kvm_path=kvm_path, vms=3
    )
    assert result["vms"] == 3 and result["series"] == 60
    assert result["machine_state"] == "running"
    assert result["rows"] == result["samples_written"] == 20 * (result["ticks"] + 3)
    assert result["lock_errors"] == 0 and result["write_errors"] == 0
    assert result["signals"] > 0
