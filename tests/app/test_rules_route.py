"""GET /api/rules: the browser's forms check with the contract's own numbers."""

from __future__ import annotations

from contract import rules
from contract.guest import CONTROL_PORT


def test_get_api_rules_serves_the_contract_numbers(client) -> None:
    body = client.get("/api/rules").json()
    assert body["max_doorbells"] == rules.MAX_DOORBELLS
    assert body["max_doorbell_rate_hz"] == rules.MAX_DOORBELL_RATE_HZ
    assert body["registration_lens"] == [0, 1, 2, 4, 8]
    assert body["write_lens"] == {"pio": [1, 2, 4], "mmio": [1, 2, 4, 8]}
    assert body["control_port"] == CONTROL_PORT and body["pio_max"] == 0xFFFF
    assert body["bench_paths"]["ioeventfd-pio"] == "userspace-pio"
