# static_dependency(NAME URL SHA256 LIB [CMAKE_ARGS ...]): builds a library
# that Debian ships only shared (oneTBB, Google Benchmark) as a static one
# from Debian's own source tarball of the same release, for the guest
# binaries that must run with nothing installed (exit_stress-static,
# guest_exit_benchmark-static). Defines the imported target NAME_static_lib
# (LIB under the install prefix, plus its headers). ExternalProject keeps
# the build apart from the system packages the rest of the tree links.
# The tarball is fetched when the project is built; for an offline build
# point the URL at a local copy (a path works as well as a URL).
include(ExternalProject)
if(POLICY CMP0135)  # CMake 3.24+: extracted files get the extraction time
  cmake_policy(SET CMP0135 NEW)
endif()

function(static_dependency name url sha256 lib)
  cmake_parse_arguments(PARSE_ARGV 4 arg "" "" "CMAKE_ARGS")
  set(prefix ${CMAKE_BINARY_DIR}/static-deps/${name})
  ExternalProject_Add(${name}_static
    URL ${url}
    URL_HASH SHA256=${sha256}
    DOWNLOAD_NO_PROGRESS ON
    PREFIX ${prefix}
    INSTALL_DIR ${prefix}/install
    CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release
               -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}
               -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
               -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
               -DCMAKE_INSTALL_PREFIX=<INSTALL_DIR>
               -DCMAKE_INSTALL_LIBDIR=lib
               -DBUILD_SHARED_LIBS=OFF
               ${arg_CMAKE_ARGS}
    BUILD_BYPRODUCTS <INSTALL_DIR>/lib/${lib}
    LOG_CONFIGURE ON LOG_BUILD ON LOG_INSTALL ON LOG_OUTPUT_ON_FAILURE ON
  )
  # The include directory must exist at configure time for the imported target.
  file(MAKE_DIRECTORY ${prefix}/install/include)
  add_library(${name}_static_lib STATIC IMPORTED GLOBAL)
  set_target_properties(${name}_static_lib PROPERTIES
    IMPORTED_LOCATION ${prefix}/install/lib/${lib}
    INTERFACE_INCLUDE_DIRECTORIES ${prefix}/install/include)
  add_dependencies(${name}_static_lib ${name}_static)
endfunction()
