# guest_exit_benchmark-static: the guest benchmark as one fully static file,
# so the L2 image holds no shared library at all (exit_stress-static beside
# it) and the benchmark runs in a student's guest whatever its libc. Debian
# ships Google Benchmark only as a shared library: the same release is built
# static from Debian's own source tarball (cmake/StaticDependency.cmake; for
# an offline build point BENCH_BENCHMARK_URL at a local copy), with the
# static oneTBB that exit_stress-static links (stress/guest/static.cmake).
set(BENCH_BENCHMARK_URL
    "http://deb.debian.org/debian/pool/main/b/benchmark/benchmark_1.7.1.orig.tar.gz"
    CACHE STRING "Google Benchmark source tarball (URL or path) for guest_exit_benchmark-static")
set(BENCH_BENCHMARK_SHA256
    "6430e4092653380d9dc4ccb45a1e2dc9259d581f4866dc0759713126056bc1d7"
    CACHE STRING "SHA-256 of BENCH_BENCHMARK_URL (Debian bookworm's benchmark_1.7.1.orig.tar.gz)")
# The library alone: no tests (they would need GoogleTest's sources), no
# -Werror on a newer compiler than the release knew.
static_dependency(benchmark ${BENCH_BENCHMARK_URL} ${BENCH_BENCHMARK_SHA256} libbenchmark.a
  CMAKE_ARGS -DBENCHMARK_ENABLE_TESTING=OFF -DBENCHMARK_ENABLE_GTEST_TESTS=OFF
             -DBENCHMARK_ENABLE_WERROR=OFF -DBENCHMARK_ENABLE_INSTALL=ON
             -DBENCHMARK_INSTALL_DOCS=OFF)
# Static users of the library define BENCHMARK_STATIC_DEFINE (its export header).
set_property(TARGET benchmark_static_lib APPEND PROPERTY
             INTERFACE_COMPILE_DEFINITIONS BENCHMARK_STATIC_DEFINE)

# bench_support's sources again, against the static oneTBB's headers.
add_executable(guest_exit_benchmark-static guest_exit_benchmark.cc parallel.cc tsc.cc)
target_include_directories(guest_exit_benchmark-static PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(guest_exit_benchmark-static PRIVATE
                      benchmark_static_lib onetbb_static_lib exitstats Threads::Threads)
target_link_options(guest_exit_benchmark-static PRIVATE -static)

if(BUILD_TESTING)
  add_test(NAME bench.guest_static_runs_in_an_empty_root
    COMMAND ${PROJECT_SOURCE_DIR}/stress/guest/empty-root-test.sh
            $<TARGET_FILE:guest_exit_benchmark-static>)
  set_tests_properties(bench.guest_static_runs_in_an_empty_root PROPERTIES
                       LABELS guest TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
