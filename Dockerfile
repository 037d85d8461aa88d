# cairn in a container. Build: docker build -t cairn .
# Run:   docker run -d --name cairn --restart unless-stopped \
#          -v cairn-data:/data/cairn -p 4001:4001 -p 4001:4001/udp -p 127.0.0.1:5001:5001 cairn
# The repo lives in the /data/cairn volume; the daemon initialises it on first start.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cairn

FROM debian:bookworm-slim
RUN useradd --system --home-dir /data/cairn --create-home cairn
COPY --from=build /src/target/release/cairn /usr/local/bin/cairn
COPY contrib/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER cairn
ENV CAIRN_PATH=/data/cairn
VOLUME /data/cairn
EXPOSE 4001/tcp 4001/udp 5001/tcp
# The entry point makes the RPC listen on all interfaces inside the container, so the published
# port reaches it. Keep the host side bound to 127.0.0.1 (see above), or set API.Authorizations
# before exposing it further.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
# `diag healthy` fails as soon as shutdown begins (503 from /health), not only once the RPC is
# gone, as Kubo 0.42's HEALTHCHECK does with `ipfs diag healthy`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["cairn", "--api", "/ip4/127.0.0.1/tcp/5001", "diag", "healthy"]
