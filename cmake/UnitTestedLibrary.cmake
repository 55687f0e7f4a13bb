# unit_tested_library(LIB SOURCE... [TEST TEST_NAME TEST_SOURCE...]): the
# pattern of the tools and stress parts: a static library LIB of their logic
# over exitstats, its headers found from the folder that declares it, and
# (with BUILD_TESTING) a GoogleTest binary TEST_NAME of its unit tests, run
# by `ctest -L unit`. The part's own executables link LIB and set their own
# link options (several are -static: they are copied into initramfs images).
function(unit_tested_library lib)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "TEST")
  add_library(${lib} STATIC ${arg_UNPARSED_ARGUMENTS})
  target_include_directories(${lib} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${lib} PUBLIC exitstats)
  if(BUILD_TESTING AND arg_TEST)
    list(POP_FRONT arg_TEST test)
    add_executable(${test} ${arg_TEST})
    target_link_libraries(${test} PRIVATE ${lib} GTest::gtest_main)
    gtest_discover_tests(${test} DISCOVERY_TIMEOUT 30 PROPERTIES LABELS unit)
  endif()
endfunction()
