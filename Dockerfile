# syntax=docker/dockerfile:1
#
# One image with every Tern binary. `docker compose up --build` uses it for each service (see
# docker-compose.yml); on its own it runs everything in one process:
#   docker build -t tern . && docker run --rm -p 1883:1883 -p 8083:8083 tern
#
# Build stage: the Rust toolchain the workspace is pinned to (rust-version 1.95). Building needs
# only the toolchain and gcc (protox compiles the .proto files; aws-lc-rs builds with cc).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Every binary of the workspace; tern's compose check (e2e/tests/compose.rs) keeps this list
# equal to the workspace's binaries.
ARG BINARIES="broker-core auth-service webhook-relay admin-api tern"
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    packages=""; for b in $BINARIES; do packages="$packages -p $b"; done; \
    cargo build --release --locked $packages --bins; \
    mkdir -p /out; \
    for b in $BINARIES; do cp "target/release/$b" /out/; done

# Runtime stage: Debian slim with CA certificates (HTTPS webhooks and HTTP auth verify servers
# against the system store), a non-root user, and the binaries. /var/lib/tern/outbox belongs to
# that user, so a volume mounted there (webhook-relay's outbox) starts out writable by it.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/tern tern \
    && install -d -o tern -g tern /var/lib/tern/outbox
COPY --from=build /out/ /usr/local/bin/
COPY etc/ /etc/tern/
USER tern
WORKDIR /var/lib/tern
# MQTT over TCP, TLS, WebSocket, secure WebSocket; auth-service and webhook-relay gRPC.
EXPOSE 1883 8883 8083 8084 50051 50052
CMD ["tern", "start", "--conf", "/etc/tern/tern.conf"]
