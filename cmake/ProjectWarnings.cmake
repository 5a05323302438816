# Warnings for the project's own targets. Third-party headers come in through
# imported targets, whose include directories count as system headers, so
# -Werror never fails the build on CAF's or yaml-cpp's own warnings.
function(mcfg_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endfunction()
