#!/usr/bin/env bash
# Builds the container image of this example without any registry: a root filesystem is
# assembled in a temp dir from what Debian's packages installed on this machine (nginx,
# the shell that runs check commands, and the shared libraries `ldd` lists for each),
# plus the given confsync binary and this folder's confsync.toml, conf.d/ and
# templates/, then packed into a tarball and `docker import`ed.
#
#   examples/container/build-image.sh CONFSYNC_BINARY [IMAGE]
#
# IMAGE defaults to confsync-nginx:example. The docker CLI is run as `docker` (or
# $DOCKER); DOCKER_HOST chooses the engine as usual. Needs: nginx, ldd (libc-bin), tar.
# Prints the image's name on its last line.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 CONFSYNC_BINARY [IMAGE]" >&2
  exit 2
fi
CONFSYNC_BIN=$1
IMAGE=${2:-confsync-nginx:example}
DOCKER=${DOCKER:-docker}
HERE="$(cd "$(dirname "$0")" && pwd)"
export PATH="$PATH:/usr/sbin:/sbin"
# The image's files are readable by nginx's workers whatever the caller's umask.
umask 022

[ -x "$CONFSYNC_BIN" ] || { echo "not an executable: $CONFSYNC_BIN" >&2; exit 1; }
NGINX=$(command -v nginx) || { echo "missing: nginx (apt-get install nginx)" >&2; exit 1; }
SHELL_BIN=$(readlink -f /bin/sh)
for prog in ldd tar "$DOCKER"; do
  command -v "$prog" >/dev/null || { echo "missing: $prog" >&2; exit 1; }
done
[ -f /etc/nginx/mime.types ] || { echo "missing: /etc/nginx/mime.types (apt-get install nginx)" >&2; exit 1; }

ROOT_DIR="$(mktemp -d -t confsync-image.XXXXXX)"
trap 'rm -rf "$ROOT_DIR"' EXIT
ROOTFS="$ROOT_DIR/rootfs"
mkdir -p "$ROOTFS"

# put SRC DEST: copies SRC (following symlinks) to DEST inside the root filesystem.
put() {
  mkdir -p "$ROOTFS$(dirname "$2")"
  cp -L "$1" "$ROOTFS$2"
}

# put_program SRC DEST: the program and every shared library ldd lists for it, each at
# the path the host has it at (the dynamic loader included).
put_program() {
  put "$1" "$2"
  local lib
  # ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the loader.
  for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [ -e "$ROOTFS$lib" ] || put "$lib" "$lib"
  done
}

put_program "$CONFSYNC_BIN" /usr/bin/confsync
put_program "$NGINX" /usr/sbin/nginx
# check_cmd and reload_cmd run through /bin/sh -c.
put_program "$SHELL_BIN" /bin/sh

put /etc/nginx/mime.types /etc/nginx/mime.types
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
www-data:x:33:
nogroup:x:65534:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$ROOTFS/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$ROOTFS/etc/hosts"

# Writable places: nginx's temp and log dirs and its pid file's dir, confsync's state
# dir, /tmp.
mkdir -p "$ROOTFS"/{root,run/nginx,var/log/nginx,var/lib/confsync,var/www}
mkdir -p "$ROOTFS"/var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi}
chown -R 33:33 "$ROOTFS/var/lib/nginx"
mkdir -p -m 1777 "$ROOTFS/tmp"

# confsync's own configuration.
mkdir -p "$ROOTFS/etc/confsync"
cp "$HERE/confsync.toml" "$ROOTFS/etc/confsync/"
cp -R "$HERE/conf.d" "$HERE/templates" "$ROOTFS/etc/confsync/"

tar --numeric-owner -C "$ROOTFS" -cf "$ROOT_DIR/rootfs.tar" .
"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENTRYPOINT ["/usr/bin/confsync", "run", "--confdir", "/etc/confsync"]' \
  "$ROOT_DIR/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE"
