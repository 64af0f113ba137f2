# collectord image: the daemon and collectord-admin, plus curl, jq and the
# operator scripts (scripts/create-topics, register-schemas, s3) with
# topics/main-topics and the schemas under /usr/share/collectord, so the
# same image runs the one-shot setup jobs of compose.yml and
# deploy/k8s (topics, schemas, bucket).
#
#   docker build -t collectord:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 -e COLLECTORD_KAFKA_BROKERS=... collectord:0.1.0
#
# Configuration comes from /etc/collectord/collectord.conf when present and
# from COLLECTORD_<SECTION>_<KEY> environment variables (see
# etc/collectord.conf.sample).  collectord is built the way the test
# command (scripts/test) builds it: ./autogen.sh, ../configure
# --enable-werror in build/, make; the image build then runs the unit
# tests.  t/deploy.sh checks this file with hadolint and against
# scripts/install-deps and the binaries' libraries.
ARG DEBIAN_IMAGE=debian:12.11-slim

# ---------------------------------------------------------------- build
FROM ${DEBIAN_IMAGE} AS build
# The packages of scripts/install-deps that build collectord.  Their
# versions are the release's: the base image's tag pins the release, and
# Debian stable replaces a version only with its security fix, which a
# pin here would refuse.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libevent-dev librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libcjson-dev \
	libpq-dev libcurl4-openssl-dev uuid-dev zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
WORKDIR /src/build
RUN ../autogen.sh \
 && ../configure --enable-werror --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
 && make -j"$(nproc)" \
 && make unit-check \
 && make install DESTDIR=/out
# The setup jobs' scripts and what they read, laid out as in the tree so
# each finds the others from its own place (/usr/share/collectord).
RUN install -D -m 0755 -t /out/usr/share/collectord/scripts \
	../scripts/create-topics ../scripts/register-schemas ../scripts/s3 \
 && install -D -m 0644 -t /out/usr/share/collectord/topics ../topics/main-topics \
 && install -D -m 0644 -t /out/usr/share/collectord/schemas ../schemas/subjects \
 && for p in ../schemas/*/*.proto; do \
	install -D -m 0644 "$p" "/out/usr/share/collectord/${p#../}"; \
    done

# ---------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE}
# The shared libraries collectord and collectord-admin link (t/deploy.sh
# checks the list against them), curl and jq for the scripts.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libevent-2.1-7 librdkafka1 libprotobuf-c1 libcjson1 libpq5 libcurl4 libuuid1 zlib1g libssl3 \
	ca-certificates curl jq \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 collectord \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin collectord
COPY --from=build /out/ /
# Numeric, so Kubernetes can tell it is not root (runAsNonRoot).
USER 10001:10001
ENV COLLECTORD_SERVER_LISTEN=0.0.0.0
# 60000: the clickstream family's own listener, when [family.clickstream]
# port (COLLECTORD_FAMILY_CLICKSTREAM_PORT) sets it, as compose.yml does.
EXPOSE 8000 60000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
	CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["/usr/bin/collectord"]
