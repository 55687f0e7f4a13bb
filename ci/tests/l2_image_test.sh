#!/usr/bin/env bash
# l2_image_test.sh BUILD: with the static guest binaries built
# (-DEXIT_STRESS_STATIC=ON), the L2 image holds no shared library at all:
# every test and benchmark binary is its static build (MANIFEST says
# "(static)"), and no .so file or ELF interpreter is packed. Fails on an
# image that fell back to copying a binary with its libraries (a static
# build missing, or a new guest binary added without one).
set -euo pipefail
build=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v busybox >/dev/null; then
  echo "l2_image_test: SKIP: busybox not installed (ci/install-deps: busybox-static)"; exit 77
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/l2-image-test.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$repo/ci/images/build-l2" --build-dir "$build" --out "$out/l2.cpio" --compress none
echo "MANIFEST:"; sed 's/^/  /' "$out/l2.cpio.manifest"
bad=0
if grep -v '(static)$' "$out/l2.cpio.manifest" | grep -E '^(tests exit_stress|bench) '; then
  echo "l2_image_test: the binaries above are not their static builds" >&2; bad=1
fi
libs=$(cd "$out" && cpio -it --quiet < l2.cpio | grep -E '\.so(\.|$)|/ld-linux' || true)
if [ -n "$libs" ]; then
  echo "l2_image_test: the image packs shared objects:" >&2; echo "$libs" >&2; bad=1
fi
grep -q '^tests exit_stress (static)$' "$out/l2.cpio.manifest" ||
  { echo "l2_image_test: no static exit_stress in the image" >&2; bad=1; }
[ $bad = 0 ] && echo "l2_image_test: PASS ($(du -h "$out/l2.cpio" | cut -f1) uncompressed, no shared object)"
exit $bad
