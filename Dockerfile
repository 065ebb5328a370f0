# Multi-stage image of the controller. The base is a build argument so it can be built where no
# registry is reachable, from a locally made Python base image.
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY zun_controller ./zun_controller
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

FROM ${BASE}
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home zun
USER 10001
ENTRYPOINT ["zun-controller"]
CMD ["--help"]
