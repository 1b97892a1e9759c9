"""`python -m worker.guest`: re-assemble doorbell.bin after editing doorbell.S."""

from worker.guest import IMAGE, assemble

IMAGE.write_bytes(assemble())
print(f"wrote {IMAGE} ({IMAGE.stat().st_size} bytes)")
