# The model server image: the pipeline image plus the `serve` extra (KServe's model server), so
# the pipeline image itself stays without kserve and its pandas<3 pin (see pyproject.toml).
#
#   make image-serve   tunepipe-serve:<version>, built FROM tunepipe:<version> (make image first)
#
#   docker run -p 8080:8080 -v /models:/models:ro tunepipe-serve:<version> \
#       tunepipe serve --host 0.0.0.0 --export-root /models --model-name penguins
ARG PIPELINE_IMAGE=tunepipe:latest
FROM ${PIPELINE_IMAGE}
ARG VERSION=unknown
LABEL org.opencontainers.image.title="tunepipe-serve" \
      org.opencontainers.image.description="tunepipe serve: KServe's model server over the champion" \
      org.opencontainers.image.version="${VERSION}"
USER root
# The server's dependencies from their own lock (docker/requirements-serve.lock: the CPU image's
# requirements plus the `serve` extra, resolved together by `make lock`): every version pinned
# and hash-checked. Where the server needs another version than the pipeline image holds
# (pandas<3 for kserve), pip replaces it; `pip check` proves the result consistent.
COPY docker/requirements-serve.lock /tmp/requirements-serve.lock
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements-serve.lock \
 && pip check && rm /tmp/requirements-serve.lock
USER 10001:10001
EXPOSE 8080
CMD ["tunepipe", "serve", "--help"]
