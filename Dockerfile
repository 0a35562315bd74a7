# The responder image: `responder run` (default) or `responder intake`. Kafka and AWS come from outside.
# Runs as a non-root user with a read-only root filesystem: only /data (the timeline, a volume) and /tmp
# (a tmpfs) are writable. See docs/deploying.md.

# ---- build: a virtualenv with responder and its dependencies -----------------------------------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY responder ./responder
COPY runbooks ./runbooks
# the extras the shipped runbooks and docs rely on: signing (model rollback), tracing (OTLP), msk (MSK IAM)
RUN pip install '.[signing,tracing,msk]' && python -m compileall -q /opt/venv

# ---- runtime: the virtualenv, the runbooks, nothing else ---------------------------------------------
FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin responder \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY runbooks /app/runbooks
# the image's settings: a file, not RESPONDER_* variables, which would win over a settings file of the operator's
# (RESPONDER_CONFIG); variables still override it (compose)
COPY deploy/image-settings.yaml /app/settings.yaml
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RESPONDER_CONFIG=/app/settings.yaml \
    HEALTH_URL=http://127.0.0.1:9100/healthz
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080 9100
# `responder run` answers /healthz on the metrics port; the intake on its own port (set HEALTH_URL).
HEALTHCHECK --interval=15s --timeout=4s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTH_URL'], timeout=3)"]
ENTRYPOINT ["responder"]
CMD ["run"]
