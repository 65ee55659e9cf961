# pchat-operator image: build the release binary, run it on distroless as a non-root user.
#   docker build -t pchat-operator:dev .
# See docs/operations.md ("Building the image"). Not built in this repository's CI (no Docker).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The sources the build needs: the workspace's crates, and the files they include (a few YAML
# files from examples/ and tests/fixtures/); Cargo.toml names the bench target.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY tests ./tests
COPY examples ./examples
COPY crds ./crds
# Without the default `sim` feature: the image carries no simulator, demo or SQLite.
RUN cargo build --release --locked --no-default-features --bin pchat-operator

# distroless/cc: glibc and libgcc for the Rust binary, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/pchat-operator /usr/local/bin/pchat-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pchat-operator"]
CMD ["run"]
