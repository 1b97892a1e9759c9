# One image for both services: `iosignal api` (app) and `iosignal worker` (needs /dev/kvm).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/iosignal

COPY pyproject.toml README.md ./
COPY contract ./contract
COPY cli ./cli
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
COPY static ./static
RUN pip install -e .

EXPOSE 8000
CMD ["iosignal", "api"]
