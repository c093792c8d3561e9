# syntax=docker/dockerfile:1
# ferrolb's image, for linux/amd64 and linux/arm64 (Raspberry Pi clusters):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t ferrolb:dev .
#   docker build --target lab -t ferrolb-lab:dev .     # the containerlab nodes (lab/containerlab)
#
# The build stage runs on the builder's own architecture and cross-compiles, so an arm64 image
# builds without emulation. CI checks the arm64 cross-compile with the same linker settings.

FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH' (amd64, arm64)" >&2; exit 1 ;; \
    esac \
 && rustup target add "$target" \
 && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo build --release --locked -p ferrolb --target "$target" \
 && cp "target/$target/release/ferrolb" /ferrolb

# A lab node for containerlab: the speaker plus a tiny HTTP server that answers with the node's
# name, like the nodes of the netns lab.
FROM debian:bookworm-slim AS lab
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /ferrolb /usr/local/bin/ferrolb
COPY lab/containerlab/node-entrypoint.sh /usr/local/bin/node-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/node-entrypoint.sh"]

# The image the Kubernetes manifests and the Helm chart run (the default target).
FROM gcr.io/distroless/cc-debian12 AS ferrolb
COPY --from=build /ferrolb /usr/local/bin/ferrolb
ENTRYPOINT ["/usr/local/bin/ferrolb"]
