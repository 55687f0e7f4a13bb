#!/usr/bin/env bash
# Every correct series of the project (the reference, its 6.1 port, the
# variants) is `scripts/checkpatch.pl --strict` clean: no error, no check,
# and no warning but the one every new file draws (FILE_PATH_CHANGES: "does
# MAINTAINERS need updating?"). Mutants are bugs on purpose and are not
# checked. checkpatch comes from ci/build-kernel's 6.12 tree or, without
# one, Debian's tarball; the test skips (exit 77) where neither is there.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tarball=${KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
# The 6.12 tree ci/build-kernel extracted, when there is one: decompressing
# the tarball again for three scripts costs about 30 s.
tmp=${KBUILD_ROOT:-$repo/build/kernel}/src
if [ ! -f "$tmp/scripts/checkpatch.pl" ]; then
  [ -f "$tarball" ] || { echo "SKIP: $tarball missing (apt-get install linux-source-6.12)"; exit 77; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  tar -xf "$tarball" -C "$tmp" --strip-components=1 --wildcards \
    '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
fi
bad=0 n=0
for p in "$repo"/kernel-patch/000*.patch "$repo"/kernel-patch/bases/*/*.patch \
         "$repo"/kernel-patch/variants/*/*.patch; do
  n=$((n + 1))
  out=$(cd "$tmp" && perl scripts/checkpatch.pl --strict --no-tree --terse --show-types "$p" || true)
  left=$(grep -v -e '^total:' -e ':FILE_PATH_CHANGES:' <<< "$out" || true)
  if [ -n "$left" ]; then
    echo "FAIL: ${p#"$repo"/}"; echo "$left"; bad=1
  fi
done
[ "$n" -ge 7 ] || { echo "FAIL: only $n patches found"; exit 1; }
[ $bad = 0 ] && echo "checkpatch --strict: $n patches clean (new-file MAINTAINERS warnings aside)"
exit $bad
