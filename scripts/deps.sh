#!/bin/sh
# Install the Debian packages gid needs to build and test. Idempotent and quiet
# when everything is already present. Run as root (CI) or through sudo.
set -eu

pkgs="build-essential pkg-config clang llvm libclang-rt-14-dev lld
liburing-dev libbpf-dev bpftool libelf-dev zlib1g-dev
check libsystemd-dev systemd systemtap-sdt-dev libinih-dev libpcre2-dev
linux-libc-dev procps"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
