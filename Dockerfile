# The responder service image (Apache Kafka and AWS come from outside; see docker-compose.yml).
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 responder
WORKDIR /app
COPY pyproject.toml README.md ./
COPY responder ./responder
COPY runbooks ./runbooks
RUN pip install --no-cache-dir .
USER responder
ENV RESPONDER_LOG_FORMAT=json RESPONDER_TIMELINE_PATH=/data/timeline.jsonl
VOLUME ["/data"]
ENTRYPOINT ["responder"]
CMD ["run"]
