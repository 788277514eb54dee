# Relance: one image for every service (migrate, setup-temporal, api, worker),
# each running the same `relance ...` command as the native path.
#   docker build -t relance .   then   docker compose up --scale worker=3
FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Exact versions from the lock (wheels only), nothing resolved at build time.
RUN /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /tmp/requirements.lock

FROM python:3.11-slim
# WeasyPrint (the mise en demeure letter) needs Pango; DejaVu fonts for the PDF;
# HarfBuzz's subsetter, without which WeasyPrint subsets fonts with fontTools,
# the largest cost of a dunning cycle (README, Performance).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 relance
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# The source tree as in the repository: templates/ and migrations/ are found
# next to the packages, as on a developer's machine.
COPY cli.py settings.py worker.py payload_codec.py ./
COPY activities ./activities
COPY api ./api
COPY ledger ./ledger
COPY migrations ./migrations
COPY observability ./observability
COPY rules ./rules
COPY templates ./templates
COPY workflows ./workflows
COPY dunning_client ./dunning_client
# The `relance` console script, as `pip install` writes it (pyproject: relance = cli:app).
RUN printf '#!/opt/venv/bin/python\nfrom cli import app\napp()\n' > /opt/venv/bin/relance \
    && chmod 755 /opt/venv/bin/relance
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 \
    RELANCE_ENVIRONMENT=production RELANCE_LOG_FORMAT=json
USER relance
EXPOSE 8000 9000 9464
ENTRYPOINT ["relance"]
CMD ["--help"]
