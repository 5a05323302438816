# Options for the project's own targets. Third-party headers come in through
# imported targets, whose include directories count as system headers, so
# -Werror never fails the build on CAF's or yaml-cpp's own warnings.
option(MCFG_SANITIZE "Build the project's targets with ASan and UBSan" OFF)

function(mcfg_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(MCFG_SANITIZE)
    # The sanitizer build of the whole test suite (scripts/test runs it too).
    # UBSan stays recoverable so that tests/sanitizers/ubsan.supp can silence
    # CAF's own reports; UBSAN_OPTIONS=halt_on_error=1 fails on any other.
    target_compile_options(${target} PRIVATE
      -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
