# One image for every recsys process (API, streaming job, Dagster webserver and daemon).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY recsys_core ./recsys_core
COPY recsys_io ./recsys_io
COPY recsys_stack ./recsys_stack
COPY recsys_simulator ./recsys_simulator
COPY recsys_api ./recsys_api
COPY recsys_assets ./recsys_assets
COPY streaming ./streaming
COPY recsys_cli ./recsys_cli
COPY workspace.yaml ./
RUN pip install --no-cache-dir -c requirements.lock . "dagster-postgres==0.29.27"

# Spark's Delta and Kafka jars are resolved at build time; the containers never download.
# With external Kafka and MongoDB named, `provision` fetches only what Spark needs.
ENV RECSYS_DATA_DIR=/data \
    RECSYS_TOOLS_DIR=/opt/recsys/tools \
    RECSYS_KAFKA_BOOTSTRAP=kafka:9092 \
    RECSYS_MONGO_URI=mongodb://mongo:27017/ \
    DAGSTER_HOME=/opt/dagster/home
RUN recsys stack provision && rm -rf /root/.m2
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml

EXPOSE 8000 3000
CMD ["recsys", "--help"]
