# Multi-stage image of the controller, run as a non-root user. The base is a build argument so
# it can be built where no registry is reachable, from a locally made Python base image
# (hack/build-image.sh makes one with hack/python-base.sh and builds this with it).
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
LABEL zun.openstack.org/build-stage=true
WORKDIR /src
# pyproject.toml, README.md, zun_controller/ and, optionally, wheelhouse/: the dependencies'
# wheels for a build with no package index (see .dockerignore); without it pip uses the index.
COPY . .
RUN if [ -d wheelhouse ]; then set -- --no-index --find-links wheelhouse; fi; \
    python -m pip wheel --no-cache-dir --wheel-dir /wheels "$@" .

FROM ${BASE}
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels zun-controller \
    && rm -rf /wheels
USER 10001:10001
ENTRYPOINT ["zun-controller"]
CMD ["--help"]
