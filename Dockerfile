# collectord image: the daemon and collectord-admin, plus curl and jq so the
# same image runs the one-shot setup jobs of compose.yml (topics, schemas,
# bucket) with the scripts under scripts/.
#
#   docker build -t collectord .
#   docker run --rm -p 127.0.0.1:8000:8000 -e COLLECTORD_SERVER_LISTEN=0.0.0.0 \
#       -e COLLECTORD_KAFKA_BROKERS=... collectord
#
# Configuration comes from /etc/collectord/collectord.conf when present and
# from COLLECTORD_<SECTION>_<KEY> environment variables (see
# etc/collectord.conf.sample).
ARG DEBIAN_IMAGE=debian:12.11-slim

# ---------------------------------------------------------------- build
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libevent-dev librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libcjson-dev \
	libpq-dev libcurl4-openssl-dev uuid-dev zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./autogen.sh \
 && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
 && make -j"$(nproc)" \
 && make install DESTDIR=/out

# ---------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libevent-2.1-7 librdkafka1 libprotobuf-c1 libcjson1 libpq5 libcurl4 libuuid1 zlib1g libssl3 \
	ca-certificates curl jq \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin collectord
COPY --from=build /out/ /
USER collectord
ENV COLLECTORD_SERVER_LISTEN=0.0.0.0
# 60000: the clickstream family's own listener, when [family.clickstream]
# port (COLLECTORD_FAMILY_CLICKSTREAM_PORT) sets it, as compose.yml does.
EXPOSE 8000 60000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
	CMD curl -fsS -o /dev/null http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["/usr/bin/collectord"]
