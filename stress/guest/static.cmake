# exit_stress-static: the same program as one fully static file, for a
# student's own guest, whatever its libc (Ubuntu 18.04/20.04, CentOS 7 or
# any kernel since 3.2, glibc's floor for a static binary). Debian ships oneTBB
# only as a shared library, so this builds the same oneTBB release from
# Debian's own source tarball as a static library (ExternalProject keeps
# its targets apart from the system TBB::tbb the rest of the tree links),
# then links everything with -static. The tarball is fetched when the
# project is built; for an offline build point EXIT_STRESS_ONETBB_URL at a
# local copy (a path works as well as a URL).
include(ExternalProject)
if(POLICY CMP0135)  # CMake 3.24+: extracted files get the extraction time
  cmake_policy(SET CMP0135 NEW)
endif()

set(EXIT_STRESS_ONETBB_URL
    "http://deb.debian.org/debian/pool/main/o/onetbb/onetbb_2021.8.0.orig.tar.xz"
    CACHE STRING "oneTBB source tarball (URL or path) that exit_stress-static links statically")
set(EXIT_STRESS_ONETBB_SHA256
    "7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef"
    CACHE STRING "SHA-256 of EXIT_STRESS_ONETBB_URL (Debian bookworm's onetbb_2021.8.0.orig.tar.xz)")

set(onetbb_prefix ${CMAKE_CURRENT_BINARY_DIR}/onetbb-static)
ExternalProject_Add(onetbb_static
  URL ${EXIT_STRESS_ONETBB_URL}
  URL_HASH SHA256=${EXIT_STRESS_ONETBB_SHA256}
  DOWNLOAD_NO_PROGRESS ON
  PREFIX ${onetbb_prefix}
  INSTALL_DIR ${onetbb_prefix}/install
  # No tests, examples or tbbmalloc: exit_stress needs the scheduler alone.
  # TBB_STRICT off: newer compilers warn on this release's sources.
  CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release
             -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}
             -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
             -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
             -DCMAKE_INSTALL_PREFIX=<INSTALL_DIR>
             -DCMAKE_INSTALL_LIBDIR=lib
             -DBUILD_SHARED_LIBS=OFF
             -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBB_STRICT=OFF
             -DTBBMALLOC_BUILD=OFF -DTBB_ENABLE_IPO=OFF
             -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON
  BUILD_BYPRODUCTS <INSTALL_DIR>/lib/libtbb.a
  LOG_CONFIGURE ON LOG_BUILD ON LOG_INSTALL ON LOG_OUTPUT_ON_FAILURE ON
)
# The include directory must exist at configure time for the imported target.
file(MAKE_DIRECTORY ${onetbb_prefix}/install/include)
add_library(onetbb_static_lib STATIC IMPORTED)
set_target_properties(onetbb_static_lib PROPERTIES
  IMPORTED_LOCATION ${onetbb_prefix}/install/lib/libtbb.a
  INTERFACE_INCLUDE_DIRECTORIES ${onetbb_prefix}/install/include)
add_dependencies(onetbb_static_lib onetbb_static)

# The sources of guest_checks and exit_stress again, compiled against the
# static oneTBB's own headers (guest_checks carries the shared TBB::tbb).
add_executable(exit_stress-static
  exit_stress_main.cc real_env.cc checks.cc options.cc report.cc show.cc)
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
