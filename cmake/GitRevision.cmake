# cmake -DSOURCE_DIR=... -DOUTPUT=.../git_revision.hpp -P GitRevision.cmake
# Writes the checkout's `git describe --always --dirty` (or "unknown") as
# MCFG_GIT_REVISION into OUTPUT, touching OUTPUT only when it changed, so
# that a build recompiles what includes it only then.
execute_process(COMMAND git describe --always --dirty
                WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE revision
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                RESULT_VARIABLE rc)
# A build from a copy without .git (scripts/package's) is told the revision
# in MCFG_GIT_REVISION.
if(NOT rc EQUAL 0 OR revision STREQUAL "")
  if(DEFINED ENV{MCFG_GIT_REVISION} AND NOT "$ENV{MCFG_GIT_REVISION}" STREQUAL "")
    set(revision "$ENV{MCFG_GIT_REVISION}")
  else()
    set(revision unknown)
  endif()
endif()
set(text "#pragma once\n// Written by cmake/GitRevision.cmake at build time.\n#define MCFG_GIT_REVISION \"${revision}\"\n")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
