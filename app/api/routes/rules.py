"""The rules and limits a registration or workload must respect, for forms that check early."""

from typing import Any

from fastapi import APIRouter

from contract import rules
from contract.benchpaths import BENCH_PATHS

router = APIRouter(tags=["rules"])


@router.get("/rules")
def read_rules() -> dict[str, Any]:
    """Every rule's numbers (contract/rules.py) and the benchmark paths, in table order.

    Public like /health: these are the kernel's and the guest's rules, nothing of this
    deployment. The server checks every request again and has the last word.
    """
    return {**rules.as_dict(), "bench_paths": BENCH_PATHS}
