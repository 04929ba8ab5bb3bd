# TMT_FUZZ=ON (with clang) instruments every library for libFuzzer's coverage; tests/CMakeLists.txt
# then links each fuzz target with -fsanitize=fuzzer.
if(TMT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TMT_FUZZ needs clang: CC=clang cmake -DTMT_FUZZ=ON ...")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_compile_definitions(TMT_FUZZING=1 TMT_DEBUG_CHECKS=1)
endif()
