#!/usr/bin/env bash
# Set-up for the benchmark (the Python bench extras are installed by `make bench`):
#   1. etcd and the Go toolchain with etcd's sources from Debian's packages
#      (etcd-server, etcd-client, golang-go, golang-etcd-server-dev);
#   2. the gRPC load generator bench/etcd_load/main.go, built OFFLINE in GOPATH mode
#      against /usr/share/gocode (no module proxy is needed) into bench/bin/ (git-ignored).
# Safe to run again: installs only what is missing and rebuilds only when main.go is newer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages=(etcd-server etcd-client golang-go golang-etcd-server-dev)
gocode=/usr/share/gocode
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server etcd-client)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d "$gocode/src/go.etcd.io/etcd/etcdserver/etcdserverpb" ] || missing+=(golang-etcd-server-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing: ${missing[*]}; run as root: apt-get update && apt-get install -y ${packages[*]}" >&2
        exit 0  # the benchmark runs without etcd and says so in its report
    fi
    apt-get update -qq
    apt-cache policy etcd-server | sed -n 1,3p  # sed reads it all: no SIGPIPE under pipefail
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    # Debian's package enables a system etcd service; the benchmark starts its own members.
fi
bin="$here/bin/etcd_load"
src="$here/etcd_load/main.go"
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    mkdir -p "$here/bin"
    echo "building $bin (Go $(go env GOVERSION), etcd sources from $gocode)"
    (cd "$here/etcd_load" && GO111MODULE=off GOPATH="$gocode" GOFLAGS= GOPROXY=off \
        GOCACHE="$here/bin/.gocache" go build -o "$bin" .)
fi
