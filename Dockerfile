# A static binary (pure-Go SQLite, no cgo) on a distroless base with CA certificates
# (WeChat is HTTPS) and a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/server ./cmd/server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ledgerctl ./cmd/ledgerctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /out/ledgerctl /usr/local/bin/
WORKDIR /var/lib/ledger
ENV LEDGER_ADDR=:8080 LEDGER_DATA_DIR=/var/lib/ledger/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/usr/local/bin/server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/server"]
