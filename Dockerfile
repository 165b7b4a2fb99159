# Dockerfile - Raven Zero on Debian 12 slim, built from this repository alone.
#
#   docker build -t raven-zero .
#   docker compose up -d            (with Valkey: see compose.yaml)
#
# Stage "build" compiles with the Debian -dev packages, installed by scripts/deps.sh as
# on a developer's machine; the runtime stage gets the binary, the word list and only
# the shared libraries the binary links (the test
# dockerfile_runtime_stage_installs_every_library_the_binary_links keeps that list
# true). It runs as an unprivileged user; uploads, temp files and the server secret
# live in the volume /var/lib/raven-zero; logs go to stdout (and to LOG_PATH).

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
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libhiredis0.14 libssl3 libmagic1 libmagic-mgc libcjson1 libyaml-0-2 \
        libwslay1 zlib1g liblzma5 libbz2-1.0 libc6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 raven-zero \
 && useradd --system --uid 10001 --gid raven-zero --home-dir /var/lib/raven-zero \
        --no-create-home --shell /usr/sbin/nologin raven-zero \
 && install -d -o raven-zero -g raven-zero -m 0700 /var/lib/raven-zero \
 && install -d -o raven-zero -g raven-zero -m 0750 /var/log/raven-zero
COPY --from=build /out/usr/local/sbin/raven-zero /usr/local/sbin/raven-zero
COPY --from=build /out/usr/local/share/raven-zero/ /usr/local/share/raven-zero/

ENV LISTEN=0.0.0.0:8000 \
    LOG_STDOUT=1 \
    LOG_PATH=/var/log/raven-zero/raven_zero.log \
    STORAGE_PATH=/var/lib/raven-zero/uploads \
    TEMP_PATH=/var/lib/raven-zero/temp \
    SECRET_PATH=/var/lib/raven-zero/secret.key \
    DICEWARE_WORDLIST_PATH=/usr/local/share/raven-zero/eff_large_wordlist.txt

USER raven-zero
WORKDIR /var/lib/raven-zero
VOLUME ["/var/lib/raven-zero"]
EXPOSE 8000
# SIGQUIT is the graceful stop (in-flight downloads finish, up to SHUTDOWN_TIMEOUT);
# give `docker stop` at least that long (-t 40, or stop_grace_period in compose.yaml).
STOPSIGNAL SIGQUIT
# /health/ answers 503 when degraded. bash's /dev/tcp needs no extra package.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health/ HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 5 _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/sbin/raven-zero"]
