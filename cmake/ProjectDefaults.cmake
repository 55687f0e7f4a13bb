# What every build of this tree sets up after project(): the whole tree's
# (CMakeLists.txt) and stress/hostile's when it is configured on its own
# (cmake -S stress/hostile, what ci/sanitizers/hostile-run builds).
# cmake_minimum_required and project() stay in each top-level
# CMakeLists.txt, where CMake wants them; so does CMAKE_CXX_EXTENSIONS, which
# only the whole tree turns off (stress/hostile alone builds as gnu++20).
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()
add_compile_options(-Wall -Wextra)

include(CTest)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)
include(GoogleTest)

include(${CMAKE_CURRENT_LIST_DIR}/UnitTestedLibrary.cmake)
