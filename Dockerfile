# syntax=docker/dockerfile:1
# TRACO node image: `traco` is the entrypoint, e.g. `traco serve node --node n0`.
# Kafka is external here (TRACO_KAFKA_BOOTSTRAP), so the embedded broker (extra `embedded`)
# is left out. Build: `make image` (docker build -t traco:<version> .).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: the traco wheel and a wheel of every runtime dependency --------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler and OpenSSL's headers for the compiled state tree (core/_smt_native.c); only
# in this stage: the runtime image has OpenSSL's library already (Python's ssl needs it).
# Versions are Debian bookworm's, which the base image pins; exact pins would break the build
# at every Debian security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# src/traco holds relative symlinks to these folders; they resolve inside /src as in the repo.
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY core ./core
COPY schemas ./schemas
COPY services ./services
COPY cli ./cli
# Extras: `hsm` (python-pkcs11, for TRACO_SIGNER=pkcs11 with the HSM vendor's module mounted)
# and `otlp` (span export when OTEL_EXPORTER_OTLP_ENDPOINT is set).
RUN python -m pip wheel --wheel-dir /wheels ".[hsm,otlp]" \
    && python -c "import pathlib, sys, zipfile; w = next(pathlib.Path('/wheels').glob('traco-*.whl')); n = zipfile.ZipFile(w).namelist(); sys.exit(0 if 'traco/core/adapters/cassandra.cql' in n and 'traco/services/node/serve.py' in n and any(m.startswith('traco/core/_smt_native') for m in n) else 'incomplete wheel ' + w.name)"

# ---- runtime: Python, the wheels installed, nothing else ----------------------------------
FROM ${PYTHON_IMAGE}
# The version the builder's wheel has (pyproject.toml); `make image` passes it.
ARG TRACO_VERSION=0.1.0
LABEL org.opencontainers.image.title="traco" \
      org.opencontainers.image.version="${TRACO_VERSION}" \
      org.opencontainers.image.description="TRACO: a permissioned, BFT-sealed ledger for trade finance"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRACO_DATA_DIR=/var/lib/traco \
    TRACO_API_HOST=0.0.0.0
# A fixed uid/gid (10001) so that securityContext.runAsUser and fsGroup can name it.
RUN groupadd --system --gid 10001 traco \
    && useradd --system --uid 10001 --gid traco --home-dir /var/lib/traco --no-create-home \
       --shell /usr/sbin/nologin traco \
    && mkdir -p /var/lib/traco \
    && chown traco:traco /var/lib/traco
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels "traco[hsm,otlp]==${TRACO_VERSION}" \
    && python -m pip uninstall --yes setuptools wheel \
    && traco --help > /dev/null
WORKDIR /var/lib/traco
USER 10001:10001
EXPOSE 8700 8701 8702 8703
ENTRYPOINT ["traco"]
CMD ["--help"]
