# TMT_SANITIZE=address,undefined builds everything with those sanitizers. UBSan is made fatal so a
# finding fails the test that triggered it instead of scrolling past.
if(TMT_SANITIZE)
  set(_san "-fsanitize=${TMT_SANITIZE}")
  add_compile_options(${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(${_san})
  add_compile_definitions(TMT_DEBUG_CHECKS=1)
endif()
if(CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(TMT_DEBUG_CHECKS=1)
endif()
