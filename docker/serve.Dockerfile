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
# The extra's requirement read from pyproject.toml, the one place it is declared.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb')) \
['project']['optional-dependencies']['serve']))" > /tmp/serve.txt \
 && pip install --no-cache-dir -r /tmp/serve.txt && pip check && rm /tmp/serve.txt /tmp/pyproject.toml
USER 10001:10001
EXPOSE 8080
CMD ["tunepipe", "serve", "--help"]
