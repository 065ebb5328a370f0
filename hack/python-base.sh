#!/usr/bin/env bash
# Makes a local Python base image for the Dockerfile where no registry is reachable:
# Debian's own python3.11 (interpreter, standard library, pip, setuptools, wheel), every
# shared library their binaries and extension modules need (found with ldd), and busybox as
# /bin/sh, put in a root filesystem and `docker import`ed. About 60 MB; made in seconds.
#   hack/python-base.sh [image]        (default zun-local/python:3.11)
set -euo pipefail
IMAGE=${1:-zun-local/python:3.11}
PKGS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-pip
      python3-setuptools python3-wheel python3-pkg-resources python3-distutils python3-lib2to3)
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/usr/bin" "$ROOT/usr/lib" "$ROOT/usr/lib64" "$ROOT/usr/sbin"
for dir in bin lib lib64 sbin; do ln -s "usr/$dir" "$ROOT/$dir"; done  # merged /usr, as Debian's

copy() {  # copy paths into the root, keeping their directories and symlinks
  for path in "$@"; do
    [ -e "$path" ] || [ -L "$path" ] || continue
    [ -d "$path" ] && [ ! -L "$path" ] && continue
    mkdir -p "$ROOT$(dirname "$path")"
    [ -e "$ROOT$path" ] && continue
    cp -a "$path" "$ROOT$path"
    if [ -L "$path" ]; then copy "$(readlink -f "$path")"; fi
  done
}

for pkg in "${PKGS[@]}"; do
  mapfile -t files < <(dpkg -L "$pkg" | grep -v -e '/usr/share/doc' -e '/usr/share/man' -e '/test/')
  copy "${files[@]}"
done
rm -f "$ROOT"/usr/lib/python3.11/EXTERNALLY-MANAGED  # the image's python is ours to install into
ln -sf python3.11 "$ROOT/usr/bin/python3"
ln -sf python3 "$ROOT/usr/bin/python"

# shared libraries of every ELF file in the root, and of wheels' extension modules (grpcio, ...)
mapfile -t libs < <(find "$ROOT" -type f \( -name '*.so*' -o -perm -u+x \) -print0 \
  | xargs -0 ldd 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u)
copy "${libs[@]}" /lib64/ld-linux-x86-64.so.2 /etc/ssl/certs/ca-certificates.crt
# what manylinux wheels may assume besides those: glibc's libraries, libgcc_s and libstdc++
for lib in libc.so.6 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0 libutil.so.1 \
           libresolv.so.2 libnsl.so.1 libnss_files.so.2 libnss_dns.so.2 libz.so.1 \
           libstdc++.so.6 libgcc_s.so.1; do
  copy "/usr/lib/x86_64-linux-gnu/$lib" "/lib/x86_64-linux-gnu/$lib"
done
mkdir -p "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
cp /bin/busybox "$ROOT/bin/busybox"
for applet in sh ls cat mkdir rm cp mv env id ln chmod chown; do ln -sf busybox "$ROOT/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nzun:x:10001:10001:zun:/tmp:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nzun:x:10001:\n' >"$ROOT/etc/group"

tar -C "$ROOT" -c . | docker import \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "$IMAGE"
