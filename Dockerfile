# The Prometheus busybox pattern: the binary is built outside (`make build`,
# i.e. promu) into .build/<os>-<arch>/ and copied onto a small base;
# `make docker` builds this image. BASE_IMAGE can name another base with a
# user "nobody" (the tests use a local busybox image).
ARG ARCH="amd64"
ARG OS="linux"
ARG BASE_IMAGE="quay.io/prometheus/busybox-${OS}-${ARCH}:latest"
FROM ${BASE_IMAGE}

ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/docker_exporter /bin/docker_exporter

EXPOSE 9417
# Needs only read access to the Docker socket: run it with the socket's group
# (docker run --group-add "$(stat -c %g /var/run/docker.sock)"), not as root.
USER nobody
ENTRYPOINT ["/bin/docker_exporter"]
