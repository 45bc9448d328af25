#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages (and cargo-deb from
# crates.io) when missing, then runs formatting and lint checks and the whole suite.
# Tests start their own etcd, Redis, ZooKeeper, HAProxy and nginx on free loopback
# ports; nothing here starts a service.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

need=()
have protoc || need+=(protobuf-compiler)
# protoc needs the well-known .proto files too (a Recommends of protobuf-compiler).
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
have haproxy || need+=(haproxy)
have nginx || need+=(nginx)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have redis-server || need+=(redis-server)
have redis-sentinel || need+=(redis-sentinel)
have openssl || need+=(openssl)
have dockerd || need+=(docker.io)
# The docker tests' image is a tarball of the static busybox (no registry is reached).
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have ip || need+=(iproute2)
# ZooKeeper 3.8 (persistent recursive watches) on a headless Java runtime.
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || need+=(zookeeper)
have java || need+=(default-jre-headless)
# The status page is checked in a real headless browser.
have chromium || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The package test builds the .deb with cargo-deb (from crates.io).
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing: cargo-deb"
  cargo install cargo-deb --locked
fi

cargo fmt --all -- --check
# The quick start builds without the etcd and Redis features: keep that build clean too.
cargo clippy --no-default-features --locked -- -D warnings
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-fail-fast
