# syntax=docker/dockerfile:1
# Build stage: compile tessera against Debian's libnetcdf.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libnetcdf-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin tessera

# Runtime stage: the binary and the shared libraries it links.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libnetcdf19 curl ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/tessera tessera && mkdir -p /var/lib/tessera && chown tessera /var/lib/tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
ENV TESSERA_DATA_DIR=/var/lib/tessera TESSERA_LISTEN=0.0.0.0:8080 TESSERA_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["tessera"]
CMD ["serve"]
