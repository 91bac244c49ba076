# Image of flightdeck itself (for running it on Fly: docs/fly.toml). Not built by the tests: this machine has no
# Docker engine.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /flightdeck ./cmd/flightdeck

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /flightdeck /usr/local/bin/flightdeck
USER nonroot
ENTRYPOINT ["/usr/local/bin/flightdeck"]
CMD ["run"]
