# Warning set for all project code (the spirit of Varnish's wflags.py). TMT_WERROR turns them into
# errors; CI always builds with it.
set(TMT_WARNINGS
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wformat=2
    -Wnull-dereference -Wimplicit-fallthrough -Wpointer-arith -Wvla -Wundef)
if(TMT_WERROR)
  list(APPEND TMT_WARNINGS -Werror)
endif()

function(tmt_target_warnings target)
  target_compile_options(${target} PRIVATE ${TMT_WARNINGS})
endfunction()
