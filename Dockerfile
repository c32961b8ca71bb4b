# syntax=docker/dockerfile:1
# The platform image (charts/lakehouse): the operator (`python -m lakehouse_operator`) and the upload
# API (`uvicorn --factory lakehouse_api.main:create_app`), Python 3.11 with the locked dependencies.
# Build from the repository root:  docker build -t lakehouse:<version> .
# (Not built by this repository's CI: there is no container engine there.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY devstack/versions.env devstack/versions.env
RUN . devstack/versions.env && pip install --no-cache-dir "uv==$UV_VERSION"
COPY pyproject.toml uv.lock README.md ./
COPY lakehouse lakehouse
COPY operator operator
COPY api api
COPY spark spark
COPY nifi nifi
# pyspark is only needed by the Spark job image (spark/Dockerfile) and in local mode.
RUN uv export --frozen --no-dev --no-emit-project --no-hashes -o /tmp/locked.txt \
 && grep -v '^pyspark==' /tmp/locked.txt > /requirements.txt \
 && uv build --wheel -o /dist

FROM ${PYTHON_IMAGE}
COPY --from=wheel /requirements.txt /tmp/requirements.txt
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
 && rm -rf /tmp/requirements.txt /tmp/dist \
 && useradd --system --uid 10001 --gid 0 --home-dir /nonexistent lakehouse
COPY contracts /opt/lakehouse/contracts
ENV LAKEHOUSE_CONTRACTS_DIR=/opt/lakehouse/contracts \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001
CMD ["python", "-m", "lakehouse_operator"]
