# Dockerfile - Raven Zero on Debian 12 slim, built from this repository alone.
#
#   docker build -t raven-zero .
#   docker compose up -d            (with Valkey: see compose.yaml)
#
# Stage "build" compiles with the Debian -dev packages, installed by scripts/deps.sh as
# on a developer's machine; the runtime stage gets the binary, the word list and only
# the shared libraries the binary links (the test
# dockerfile_runtime_stage_installs_every_library_the_binary_links keeps that list
# true). It runs as an unprivileged user; uploads and temp files live in the volume
# /var/lib/raven-zero, the server secret in Valkey (never in the volume: a stolen disk
# opens nothing); logs go to stdout (and to LOG_PATH).

FROM debian:12-slim AS build
WORKDIR /src
# The "build" group of scripts/packages.txt, the project's one package list.
COPY scripts/deps.sh scripts/packages.txt scripts/
RUN scripts/deps.sh build \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make clean \
 && make all PREFIX=/usr/local \
 && make install PREFIX=/usr/local DESTDIR=/out \
 && strip /out/usr/local/sbin/raven-zero

FROM debian:12-slim
# raven-zero is a system account (no password ageing, no mail spool) with the fixed id
# 10001 that the host's chown in compose.yaml names; -K raises the system id ceiling
# (999) for this one command, so useradd does not warn.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libhiredis0.14 libssl3 libmagic1 libmagic-mgc libcjson1 libyaml-0-2 libcurl4 \
        libwslay1 zlib1g liblzma5 libbz2-1.0 libc6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system -K SYS_GID_MAX=10001 --gid 10001 raven-zero \
 && useradd --system -K SYS_UID_MAX=10001 --uid 10001 --gid raven-zero \
        --home-dir /var/lib/raven-zero --no-create-home --shell /usr/sbin/nologin raven-zero \
 && install -d -o raven-zero -g raven-zero -m 0700 /var/lib/raven-zero \
 && install -d -o raven-zero -g raven-zero -m 0750 /var/log/raven-zero
COPY --from=build /out/usr/local/sbin/raven-zero /usr/local/sbin/raven-zero
COPY --from=build /out/usr/local/share/raven-zero/ /usr/local/share/raven-zero/

ENV LISTEN=0.0.0.0:8000 \
    LOG_STDOUT=1 \
    LOG_PATH=/var/log/raven-zero/raven_zero.log \
    STORAGE_PATH=/var/lib/raven-zero/uploads \
    TEMP_PATH=/var/lib/raven-zero/temp \
    DICEWARE_WORDLIST_PATH=/usr/local/share/raven-zero/eff_large_wordlist.txt

USER raven-zero
WORKDIR /var/lib/raven-zero
VOLUME ["/var/lib/raven-zero"]
EXPOSE 8000
# SIGQUIT is the graceful stop (in-flight downloads finish, up to SHUTDOWN_TIMEOUT);
# give `docker stop` at least that long (-t 40, or stop_grace_period in compose.yaml).
STOPSIGNAL SIGQUIT
# /health/ answers 503 when degraded. bash's /dev/tcp needs no extra package. The probe
# comes from 127.0.0.1 without X-Forwarded-For, which HEALTH_RATE_LIMIT never refuses.
# Every 5 s, so that a new container is healthy within seconds on every engine:
# --start-interval would need Docker 25+, and older builders (podman 4.3 of Debian 12
# too) refuse the whole file for it. podman keeps a HEALTHCHECK only in the docker
# image format (podman build --format docker).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health/ HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 2 _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/sbin/raven-zero"]
