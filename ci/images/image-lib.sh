# Helpers for building initramfs images (sourced by build-l1, build-l2 and
# ci/sanitizers/hostile-run).
# Images are staged in a directory, then packed with `cpio -H newc`.

# stage_busybox ROOT: busybox-static and one symlink per applet. /init mounts
# devtmpfs itself, so the image needs no device nodes (and no root to build).
stage_busybox() {
  local root=$1 bb
  bb=$(command -v busybox) || { echo "image: busybox not found (apt-get install busybox-static)" >&2; return 3; }
  # ldd (always there, unlike file(1)) refuses static binaries.
  ! ldd "$bb" >/dev/null 2>&1 ||
    { echo "image: $bb is not static (apt-get install busybox-static)" >&2; return 3; }
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib,lib64,usr/bin}
  cp "$bb" "$root/bin/busybox"
  local a
  for a in $("$bb" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
  done
}

# install_init ROOT INIT: INIT as ROOT/init, with what every L1 /init
# sources or calls: /lib/init-lib.sh (mounts, results, stage marks, the
# step table) and /bin/send-results (results over com2).
install_init() {
  local root=$1 init=$2 images
  images=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  install -m 0755 "$init" "$root/init" &&
    install -D -m 0644 "$images/init-lib.sh" "$root/lib/init-lib.sh" &&
    install -D -m 0755 "$images/send-results" "$root/bin/send-results"
}

# image_add ROOT KIND SRC DEST: a built binary into the image at DEST and
# its line "KIND NAME" in ROOT/MANIFEST. SRC-static, when built, is taken
# instead ("KIND NAME (static)": nothing else to bring); a static SRC is
# copied alone, a dynamic one with its libraries. Returns 1 when neither
# is built (the caller says whether that matters).
image_add() {
  local root=$1 kind=$2 src=$3 dest=$4
  if [ -x "$src-static" ] && [ -f "$src-static" ]; then
    install -D -m 0755 "$src-static" "$root$dest"
    echo "$kind ${dest##*/} (static)" >> "$root/MANIFEST"
  elif [ -x "$src" ] && [ -f "$src" ]; then
    if ldd "$src" >/dev/null 2>&1; then
      copy_with_libs "$root" "$src" "$dest" || return 3
    else
      install -D -m 0755 "$src" "$root$dest"
    fi
    echo "$kind ${dest##*/}" >> "$root/MANIFEST"
  else
    return 1
  fi
}

# copy_with_libs ROOT SRC [DEST]: a dynamically linked binary plus every
# shared library `ldd` resolves (and the ELF interpreter), each at the path
# ldd resolved it to, so RUNPATHs into a build tree keep working.
copy_with_libs() {
  local root=$1 src=$2 dest=${3:-$2} lib
  [ -x "$src" ] || { echo "image: missing binary $src" >&2; return 3; }
  install -D -m 0755 "$src" "$root$dest"
  # ldd lines: "libX.so => /path (addr)" or "/lib64/ld-linux... (addr)".
  ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
      [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
  # A library "not found" by ldd would fail only at boot, under emulation:
  # catch it here instead.
  if ldd "$src" 2>/dev/null | grep -q 'not found'; then
    echo "image: unresolved libraries for $src:" >&2
    ldd "$src" | grep 'not found' >&2
    return 3
  fi
}

# strip_tree ROOT: strip debug info from ELF files. Every byte costs
# decompression time under TCG.
strip_tree() {
  local root=$1
  command -v strip >/dev/null || return 0
  find "$root" -type f -perm -u+x ! -name busybox -print0 |
    xargs -0 -r strip --strip-debug 2>/dev/null || true
}

# pack_cpio ROOT OUT COMPRESSION: newc archive, compressed with gzip (what
# the kernel always supports; level 1: its output decompresses as fast as
# level 9 and builds 5x faster) or none.
pack_cpio() {
  local root=$1 out=$2 comp=${3:-gzip}
  local tmp=$out.tmp
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
     cpio --quiet -o -H newc -R 0:0 --reproducible) > "$tmp.cpio"
  case $comp in
    gzip) gzip -1 -n -c "$tmp.cpio" > "$tmp"; rm -f "$tmp.cpio" ;;
    none) mv "$tmp.cpio" "$tmp" ;;
    *) echo "image: unknown compression '$comp'" >&2; return 2 ;;
  esac
  mv "$tmp" "$out"
}
