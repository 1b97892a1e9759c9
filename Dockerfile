# One image for every service: `iosignal api` (app), `iosignal worker` (needs /dev/kvm) and
# `iosignal observe` (needs eBPF: see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/iosignal
# libbpf loads the observer's compiled BPF objects (observer/progs/*.bpf.o, committed)
RUN apt-get update && apt-get install -y --no-install-recommends libbpf1 \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY contract ./contract
COPY cli ./cli
COPY app ./app
COPY worker ./worker
COPY observer ./observer
COPY migrations ./migrations
COPY static ./static
RUN pip install -e .

EXPOSE 8000
CMD ["iosignal", "api"]
