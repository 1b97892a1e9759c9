"""`iosignal applybench` on a few registrations: both modes timed, every POST answered as the
benchmark expects (201 active, then 409), the database left as it was; speed is not asserted."""

from __future__ import annotations

from sqlalchemy import func, select

from benchmarks.applybench import MODES, run_applybench
from contract.db import make_engine
from contract.models import Ioeventfd, Vm


def test_a_short_applybench_times_both_modes_and_leaves_the_database_as_found(
    empty_sqlite_url: str, kvm_path: str
) -> None:
    # 3 registrations: fewer than 20, so the collisions are the floor of two (one would leave
    # no percentile to print)
    result = run_applybench(empty_sqlite_url, 3)
    assert result["database"] == "sqlite" and result["registrations"] == 3
    assert set(result["modes"]) == {label for label, _ in MODES}
    for mode in result["modes"].values():
        assert 0 < mode["p50"] <= mode["p99"] <= mode["max"]
        assert 0 < mode["refused"]["p50"] <= mode["refused"]["p99"] <= mode["refused"]["max"]
    engine = make_engine(empty_sqlite_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Vm)) == 0
        assert conn.scalar(select(func.count()).select_from(Ioeventfd)) == 0
    engine.dispose()
