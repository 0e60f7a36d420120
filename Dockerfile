# The Prometheus busybox pattern: the binary is built outside (promu or
# `make build`) into .build/<os>-<arch>/ and copied onto a small base.
ARG ARCH="amd64"
ARG OS="linux"
ARG BASE_IMAGE="quay.io/prometheus/busybox-${OS}-${ARCH}:latest"
FROM ${BASE_IMAGE}

ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/docker_exporter /bin/docker_exporter

EXPOSE 9417
# Needs only read access to the Docker socket: run with the socket's group
# (docker run --group-add <gid of docker.sock>), not as root.
USER nobody
ENTRYPOINT ["/bin/docker_exporter"]
