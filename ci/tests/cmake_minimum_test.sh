#!/usr/bin/env bash
# cmake_minimum_test.sh [WORKDIR]: the CMake a student on Ubuntu 22.04 has
# (3.22.1, the project's cmake_minimum_required) configures the project
# without Google Benchmark (-DBUILD_BENCH=OFF, and find_package(benchmark)
# disabled as if it were not installed), builds exit_stress, its
# static file and its unit tests, and those pass. The CMake comes from
# Ubuntu jammy's own packages (SHA-256 pinned), unpacked in WORKDIR; Debian
# 12's libraries run it. On demand (label ondemand): it needs
# archive.ubuntu.com. Catches: a CMake feature newer than 3.22 in any
# CMakeLists, or bench/'s dependency leaking into the guest build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$repo/build/cmake-3.22}
pool=http://archive.ubuntu.com/ubuntu/pool/main/c/cmake
debs=(
  "cmake_3.22.1-1ubuntu1_amd64.deb 5cda51128ca90f80de48a63f12818f8220bb4cd8fc42853500b8a4e71039b1c9"
  "cmake-data_3.22.1-1ubuntu1_all.deb 3a29e5796d80c3da53f898972e79d8fb23d40d4ffe9bb162b67966394a45b0e9"
)
mkdir -p "$work/debs"
for d in "${debs[@]}"; do
  set -- $d
  f=$work/debs/$1
  if ! echo "$2  $f" | sha256sum -c --status 2>/dev/null; then
    curl -fsS -m 120 -o "$f" "$pool/$1" ||
      { echo "cmake_minimum_test: cannot fetch $pool/$1" >&2; exit 2; }
    echo "$2  $f" | sha256sum -c --status || { echo "cmake_minimum_test: $1: SHA-256 mismatch" >&2; exit 2; }
  fi
  dpkg-deb -x "$f" "$work/root"
done
cmake=$work/root/usr/bin/cmake
"$cmake" --version | head -n1
rm -rf "$work/b"
# CMAKE_DISABLE_FIND_PACKAGE_benchmark: as on a machine without
# libbenchmark-dev, whatever this one has installed.
"$cmake" --no-warn-unused-cli -S "$repo" -B "$work/b" -DCMAKE_BUILD_TYPE=Release -DBUILD_BENCH=OFF -DEXIT_STRESS_STATIC=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
  2>&1 | tee "$work/configure.log"
if grep -qE 'CMake (Warning|Error|Deprecation)' "$work/configure.log"; then
  echo "cmake_minimum_test: CMake 3.22 warns about the project (above)" >&2; exit 1
fi
"$cmake" --build "$work/b" -j"$(nproc)" --target exit_stress exit_stress-static exit_stress_unit_test
"$work/b/stress/guest/exit_stress_unit_test" --gtest_brief=1
"$work/root/usr/bin/ctest" --test-dir "$work/b" -R '^exit_stress\.static' --output-on-failure
echo "cmake_minimum_test: PASS with $("$cmake" --version | head -n1)"
