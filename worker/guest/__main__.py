"""`python -m worker.guest`: re-assemble doorbell.bin and roundtrip.bin after editing a source."""

from worker.guest import SOURCES, assemble

for source, image in SOURCES.items():
    image.write_bytes(assemble(source))
    print(f"wrote {image} ({image.stat().st_size} bytes)")
