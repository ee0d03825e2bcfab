# syntax=docker/dockerfile:1
# normal-form-app container image: one static-ish Rust binary on Debian bookworm-slim.
#
# Build (BuildKit, the default builder since Docker 23):
#   docker build -t normal-form-app:dev \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg GIT_COMMIT="$(git rev-parse HEAD)" .
# .dockerignore keeps .git out of the build context, so the commit shown by /health comes only
# from the GIT_COMMIT build argument ("unknown" when it is not given).
#
# Run: docker run --rm -p 8080:8080 normal-form-app:dev    (SQLite under /app/data)
# Full local stack (PostgreSQL, stub APIs, Prometheus, Grafana, ...): deploy/compose/README.md.
# Lint: scripts/ci/check-container.sh (hadolint, compose validation, mounted files).

# ------------------------------------------------------------------------------------------------
# builder: compiles the release binary.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src

# The dependency downloads depend only on the manifests: this layer stays cached until Cargo.toml
# or Cargo.lock changes. The crates land in $CARGO_HOME inside the layer (not a cache mount) so
# that a builder with only a layer cache (--cache-from) reuses them too. `cargo fetch` needs no
# source files, although Cargo.toml names src/lib.rs and src/main.rs.
COPY Cargo.toml Cargo.lock ./
RUN cargo fetch --locked

# Only what the binary compiles in (askama templates, static files, the bundled postal table and
# common passwords, the plan catalogue, both migration histories, and the /api/v1 OpenAPI document
# that src/address/routes.rs embeds). tests/ and examples/ are auto-discovered targets, so leaving
# them out is fine for `cargo build --bin`. A new include_str!/include_bytes!/migrate! path must be
# added here: scripts/ci/check-container.sh fails when one is missing.
COPY build.rs ./
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY assets ./assets
COPY migrations ./migrations
COPY catalog.toml ./
COPY docs/api-v1.openapi.json ./docs/api-v1.openapi.json

# Declared after the COPYs so that a new commit does not invalidate the dependency layer above.
ARG GIT_COMMIT=unknown
# Read at compile time by option_env!("NFA_GIT_COMMIT") and shown in /health; Cargo rebuilds the
# crate when it changes.
ENV NFA_GIT_COMMIT=$GIT_COMMIT

# The target directory is a BuildKit cache mount, so compiled dependencies survive between builds
# (a rebuild after a source change compiles only this crate). A cache mount is not part of the
# image, hence the binary is copied out of it in the same RUN. `touch` forces this crate to be
# recompiled: the cache may hold artefacts newer than the copied sources (e.g. after building a
# later commit), and Cargo decides by modification times. --offline: everything was fetched above.
RUN --mount=type=cache,id=normal-form-app-target,target=/src/target,sharing=locked \
    touch src/lib.rs src/main.rs \
    && cargo build --release --locked --offline --bin normal-form-app \
    && install -D -m 0755 target/release/normal-form-app /out/normal-form-app

# ------------------------------------------------------------------------------------------------
# runtime: Debian rather than distroless, because `backup create/verify/restore` run pg_dump,
# pg_restore and psql for PostgreSQL.
FROM debian:bookworm-slim AS runtime

# postgresql-client-15: pg_dump must be at least the server's major version (PostgreSQL 15); bump
# the package when the database is upgraded. ca-certificates: the system roots that rustls uses
# (rustls-platform-verifier) for the external APIs and SMTP over TLS.
# DL3008 (pin apt versions) is ignored on purpose: Debian drops superseded versions from its
# mirrors at each point release and security update, so an exact pin such as
# postgresql-client-15=15.20-0+deb12u1 breaks the build weeks later. The package name pins the
# major version, the base image tag pins the Debian release, and rebuilding picks up security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid (10001), so that volumes and Kubernetes runAsUser/fsGroup can rely on
# it. /app stays root-owned and read-only for the app; only /app/data (the default DATA_DIR, home
# of the SQLite file, the generated secret key and the .eml mail files) is writable.
# --no-log-init: no sparse /var/log/lastlog entry for the large uid.
RUN groupadd --system --gid 10001 nfa \
    && useradd --system --no-log-init --uid 10001 --gid nfa --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin nfa \
    && install -d -m 0755 /app \
    && install -d -o nfa -g nfa -m 0750 /app/data

WORKDIR /app
COPY --from=builder /out/normal-form-app /usr/local/bin/normal-form-app

# Listen on every interface inside the container (the default 127.0.0.1 is unreachable from
# outside it), and log JSON lines for CloudWatch/Loki whether or not a terminal is attached.
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080

# Numeric, so that a runtime enforcing runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# `probe` GETs http://LISTEN_ADDR/health/live and exits 0 on 200: liveness only, so a database
# outage does not get healthy containers restarted (/health, with the database check, is for the
# load balancer and the blackbox exporter). No curl/wget needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/normal-form-app", "probe"]

# The app drains in-flight requests on SIGTERM for up to SHUTDOWN_TIMEOUT_SECS (25 s): give it
# more than Docker's default 10 s (`docker stop -t 30`, compose stop_grace_period, ECS stopTimeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/normal-form-app"]
CMD ["serve"]

# Last, so that a new version or commit changes only this metadata, not the layers above.
ARG VERSION=unknown
ARG GIT_COMMIT=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="normal-form-app" \
      org.opencontainers.image.description="Member-registration web form service (会員登録webフォーム)" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$GIT_COMMIT" \
      org.opencontainers.image.source="$SOURCE_URL" \
      org.opencontainers.image.licenses="UNLICENSED"
