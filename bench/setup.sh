#!/usr/bin/env bash
# Set-up for the benchmark: etcd from Debian's packages (the bench extras are
# installed by `make bench`). Safe to run again: does nothing when etcd is there.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "etcd is not installed; run as root: apt-get update && apt-get install -y etcd-server etcd-client" >&2
    exit 0  # the benchmark runs without etcd and says so in its report
fi
apt-get update -qq
apt-cache policy etcd-server | head -3
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client
# Debian's package enables a system etcd service; the benchmark starts its own members.
