# A static binary (pure-Go SQLite, no cgo) on a distroless base with CA certificates
# (WeChat is HTTPS) and a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/server ./cmd/server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ledgerctl ./cmd/ledgerctl \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /out/ledgerctl /usr/local/bin/
# The data directory (uploads; the SQLite file and the generated key when those are
# used) belongs to the image's user, nonroot (65532). A named volume mounted here starts
# as a copy of it, owner included; without it Docker makes the mount point root's, and
# the server could not store a photo.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ledger/data
WORKDIR /var/lib/ledger
ENV LEDGER_ADDR=:8080 LEDGER_DATA_DIR=/var/lib/ledger/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/usr/local/bin/server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/server"]
