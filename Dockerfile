# syntax=docker/dockerfile:1
# The platform image (charts/lakehouse): the operator (`python -m lakehouse_operator`) and the upload
# API (`uvicorn --factory lakehouse_api.main:create_app`): Python 3.11 and the locked dependencies in
# the virtualenv /opt/lakehouse/venv, first on PATH (the chart's nifi.python names its interpreter).
# Build from the repository root (Dockerfile.dockerignore keeps caches and tests out of the context):
#   docker build -t lakehouse:<version> .
# The local cluster builds it without Docker or a registry (devstack/images.sh): BASE_IMAGE is then
# a Debian bookworm root file system with Debian's python3 (3.11) made by mmdebstrap. Both bases put
# python3 on PATH; nothing here depends on where.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The project wheel, and its locked requirements: no dev group, no extras (pyspark is the `spark` extra, which only
# the Spark job image installs).
FROM ${BASE_IMAGE} AS wheel
# Unset unless the builder passes its CA bundle (devstack/images.sh does, for TLS-intercepting networks).
ARG SSL_CERT_FILE
ARG PIP_CERT
ENV UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY devstack/versions.env devstack/versions.env
RUN . devstack/versions.env \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==$UV_VERSION"
# README.md is the wheel's long description only: an empty one keeps doc edits from rebuilding images.
COPY pyproject.toml uv.lock ./
RUN touch README.md
RUN /opt/uv/bin/uv export --frozen --no-dev --no-emit-project --no-hashes -o /requirements.txt
COPY lakehouse lakehouse
COPY operator operator
COPY api api
RUN /opt/uv/bin/uv build --wheel --no-cache -o /dist

FROM ${BASE_IMAGE}
ARG SSL_CERT_FILE
ENV VIRTUAL_ENV=/opt/lakehouse/venv \
    PATH=/opt/lakehouse/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# uv comes from the wheel stage for the two installs only. The dependencies get their own layer, so a
# change to the sources rebuilds only the small wheel layer. Bytecode is compiled here: user 10001
# cannot write it into the venv, and without it every start compiles the imports again (twice as slow).
COPY --from=wheel /requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=wheel,source=/opt/uv,target=/opt/uv \
    UV_PYTHON_DOWNLOADS=never /opt/uv/bin/uv venv --python python3 "$VIRTUAL_ENV" \
 && /opt/uv/bin/uv pip install --python "$VIRTUAL_ENV/bin/python" --no-cache --compile-bytecode \
      -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
# COPY, not a bind mount: a RUN's build cache does not look at what a mount holds, so a new wheel behind an
# unchanged RUN line would be skipped and the image would keep the old code; a COPY's cache compares content.
COPY --from=wheel /dist /tmp/dist
RUN --mount=type=bind,from=wheel,source=/opt/uv,target=/opt/uv \
    /opt/uv/bin/uv pip install --python "$VIRTUAL_ENV/bin/python" --no-cache --compile-bytecode --no-deps \
      /tmp/dist/*.whl \
 && rm -r /tmp/dist \
 && useradd --system --uid 10001 --gid 0 --home-dir /nonexistent --shell /usr/sbin/nologin lakehouse
USER 10001
CMD ["python", "-m", "lakehouse_operator"]
