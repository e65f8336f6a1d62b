# source-circleci-ccm on Airbyte's Python connector base image (Python 3.11; 4.1.x moved to Python 3.13, which
# this package does not support yet). Build: docker build -t airbyte/source-circleci-ccm:0.2.0 .
# Not built in this project's CI: its machines run no Docker engine (see README).
FROM docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

WORKDIR /airbyte/integration_code

# Only what the package needs: no tests, simulator, scripts or local virtualenv in the image.
COPY pyproject.toml README.md ./
COPY source_circleci_ccm ./source_circleci_ccm
RUN pip install --no-cache-dir . \
    && rm -rf build source_circleci_ccm.egg-info

# The Airbyte platform runs connectors through this console script.
ENV AIRBYTE_ENTRYPOINT="source-circleci-ccm"
ENTRYPOINT ["source-circleci-ccm"]

LABEL io.airbyte.name=airbyte/source-circleci-ccm
LABEL io.airbyte.version=0.2.0

# The base image's unprivileged `airbyte` user (uid/gid 1000), numeric so Kubernetes `runAsNonRoot` can verify it.
USER 1000:1000
