# exit_stress-static: the same program as one fully static file, for a
# student's own guest, whatever its libc (Ubuntu 18.04/20.04, CentOS 7 or
# any kernel since 3.2, glibc's floor for a static binary). Debian ships oneTBB
# only as a shared library, so the same oneTBB release is built static from
# Debian's own source tarball (cmake/StaticDependency.cmake; for an offline
# build point EXIT_STRESS_ONETBB_URL at a local copy), then everything is
# linked with -static.
include(${PROJECT_SOURCE_DIR}/cmake/StaticDependency.cmake)

set(EXIT_STRESS_ONETBB_URL
    "http://deb.debian.org/debian/pool/main/o/onetbb/onetbb_2021.8.0.orig.tar.xz"
    CACHE STRING "oneTBB source tarball (URL or path) that exit_stress-static links statically")
set(EXIT_STRESS_ONETBB_SHA256
    "7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef"
    CACHE STRING "SHA-256 of EXIT_STRESS_ONETBB_URL (Debian bookworm's onetbb_2021.8.0.orig.tar.xz)")
# No tests, examples or tbbmalloc: exit_stress needs the scheduler alone.
# TBB_STRICT off: newer compilers warn on this release's sources.
static_dependency(onetbb ${EXIT_STRESS_ONETBB_URL} ${EXIT_STRESS_ONETBB_SHA256} libtbb.a
  CMAKE_ARGS -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBB_STRICT=OFF
             -DTBBMALLOC_BUILD=OFF -DTBB_ENABLE_IPO=OFF
             -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON)

# The sources of guest_checks and exit_stress again, compiled against the
# static oneTBB's own headers (guest_checks carries the shared TBB::tbb).
# Taken from the targets, so a source file added there is built here too.
get_target_property(guest_checks_sources guest_checks SOURCES)
get_target_property(exit_stress_sources exit_stress SOURCES)
add_executable(exit_stress-static ${exit_stress_sources} ${guest_checks_sources})
target_include_directories(exit_stress-static PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(exit_stress-static PRIVATE onetbb_static_lib exitstats GTest::gtest
                                                 Threads::Threads)
target_link_options(exit_stress-static PRIVATE -static)

if(BUILD_TESTING)
  add_test(NAME exit_stress.static_runs_in_an_empty_root
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/empty-root-test.sh $<TARGET_FILE:exit_stress-static>)
  # A dynamic binary must fail the same test (the check can fail).
  add_test(NAME exit_stress.static_check_rejects_the_dynamic_binary
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/expect-status.sh 1 "asks for an ELF interpreter"
            ${CMAKE_CURRENT_SOURCE_DIR}/empty-root-test.sh $<TARGET_FILE:exit_stress>)
  set_tests_properties(exit_stress.static_runs_in_an_empty_root PROPERTIES
                       LABELS guest TIMEOUT 120 SKIP_RETURN_CODE 77)
  set_tests_properties(exit_stress.static_check_rejects_the_dynamic_binary PROPERTIES
                       LABELS guest TIMEOUT 60)
endif()
