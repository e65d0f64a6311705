# The same image `make image` builds without Docker (hack/image): a static
# stepflow binary on an empty base with CA certificates, running as 65532.
#   docker build -t ghcr.io/stepflow-dev/stepflow:0.1.0 .
#   docker buildx build --platform linux/arm64 --build-arg VERSION=0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) .
# VERSION should be the chart's appVersion (charts/stepflow/Chart.yaml),
# which the chart installs by default.
ARG GO_VERSION=1.25

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETARCH
ARG VERSION=0.1.0
ARG COMMIT=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/stepflow-dev/stepflow/pkg/cli.buildVersion=${VERSION} -X github.com/stepflow-dev/stepflow/pkg/cli.buildCommit=${COMMIT}" -o /rootfs/usr/local/bin/stepflow ./cmd/stepflow
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/home/nonroot /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' >/rootfs/etc/group \
 && chown 65532:65532 /rootfs/home/nonroot && chmod 0700 /rootfs/home/nonroot \
 && chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION=0.1.0
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="stepflow" \
      org.opencontainers.image.description="Stepflow, a CUE-programmable workflow step engine for Kubernetes" \
      org.opencontainers.image.source="https://github.com/stepflow-dev/stepflow" \
      org.opencontainers.image.url="https://github.com/stepflow-dev/stepflow" \
      org.opencontainers.image.version="${VERSION}"
ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/nonroot SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/stepflow"]
