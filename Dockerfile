# crsbot: the Slack bot as one small, non-root image.
# Build:  docker build -t crsbot .          (or: podman build -t crsbot .)
# Run:    docker run -p 3000:3000 -v crsbot-data:/data \
#           -e SLACK_BOT_TOKEN=xoxb-... -e SLACK_SIGNING_SECRET=... crsbot
# Secrets come from the environment at run time; none are baked into the image.
# Every dependency comes from requirements.lock (exact versions, sha256-checked): the same
# tree on every build. `scripts/image-smoke` builds this file and tries the result.

# ---- builder: the locked dependencies, then the project, into a venv that has no pip of its own
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# --without-pip: the builder's pip installs into the venv (pip --python), so the venv that is
# copied to the runtime stage holds only crsbot and what it imports.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src
# Dependencies first, from the lock alone: this layer is reused until the lock changes, so a
# code change rebuilds only the small layer below.
COPY requirements.lock requirements-build.lock ./
RUN pip --python /opt/venv/bin/python install --require-hashes --no-deps -r requirements.lock \
 && pip install --require-hashes --no-deps -r requirements-build.lock

# setuptools reads the readme named in pyproject.toml, so it travels with it.
COPY pyproject.toml README.md ./
COPY grading ./grading
COPY messages ./messages
COPY bot ./bot
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/venv/bin/python install --no-deps /wheels/crsbot-*.whl

# ---- runtime: the same base image, minus pip/setuptools, plus only the venv
FROM python:3.11-slim AS runtime

# A fixed numeric uid so orchestrators can check runAsNonRoot and volumes can be
# chowned to it ahead of time.  pip, setuptools and ensurepip's bundled wheels are not needed
# to run the bot, so they leave the image.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && rm -rf /usr/local/lib/python3.11/ensurepip \
 && groupadd --system --gid 10001 crsbot \
 && useradd --system --uid 10001 --gid crsbot --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin crsbot \
 && mkdir -p /data \
 && chown crsbot:crsbot /data

COPY --from=builder /opt/venv /opt/venv

# CRSBOT_PORT_FILE: `crsbot serve` writes the port it actually bound there (PORT or --port),
# and the health check reads it, so `serve --port 8080` stays healthy.
ENV PATH=/opt/venv/bin:$PATH \
    DATABASE_URL=sqlite:////data/crsbot.sqlite3 \
    PORT=3000 \
    CRSBOT_PORT_FILE=/data/.crsbot-port \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000

# The first probe runs 5 s after start (the bot answers /healthz within about a second); slim
# has no curl, the interpreter is already here. Exit 1 on a refused connection, a timeout or a
# non-2xx answer from http://127.0.0.1:${PORT}/healthz (PORT read from CRSBOT_PORT_FILE).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-m", "bot.slack.healthcheck"]

ENTRYPOINT ["crsbot"]
CMD ["serve"]
