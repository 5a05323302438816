# What `cmake --install` puts where, and the CMake package other projects
# find with find_package(memcached_cfg 0.2 REQUIRED).
#
# Two install components: "devel" (the static libraries, their public headers
# under include/memcached_cfg/<folder>/, the package files) and "daemon"
# (mcfgd, mcfgctl, /etc/mcfgd, the systemd unit), which is what the Debian
# package holds (packaging/CMakeLists.txt).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The checkout's root (fuzz/ is a project of its own that adds our folders).
get_filename_component(MCFG_SOURCE_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(MCFG_INSTALL_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}/memcached_cfg")
set(MCFG_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/memcached_cfg")

# Every header is included with the package prefix, as CAF's are with caf/:
# "memcached_cfg/<folder>/<name>.hpp", inside the tree and by a consumer. An
# installed package has them under include/memcached_cfg/<folder>/. In the
# build, <build>/include/memcached_cfg/<folder> is a symbolic link to the
# checkout's <folder>, so the same spelling finds the sources themselves.
set(MCFG_BUILD_INCLUDEDIR "${CMAKE_BINARY_DIR}/include")

# mcfg_include_root(TARGET): TARGET's folder is reachable as
# memcached_cfg/<folder>/, and TARGET (and what links it) finds every header
# of the project that way. Every folder's library calls it.
function(mcfg_include_root target)
  file(RELATIVE_PATH folder "${MCFG_SOURCE_ROOT}" "${CMAKE_CURRENT_SOURCE_DIR}")
  set(link "${MCFG_BUILD_INCLUDEDIR}/memcached_cfg/${folder}")
  # Made anew at each configure: the build folder may have served another
  # checkout.
  file(MAKE_DIRECTORY "${MCFG_BUILD_INCLUDEDIR}/memcached_cfg")
  file(REMOVE "${link}")
  file(CREATE_LINK "${CMAKE_CURRENT_SOURCE_DIR}" "${link}" SYMBOLIC)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${MCFG_BUILD_INCLUDEDIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endfunction()

# mcfg_install_library(TARGET EXPORT_NAME NAME HEADERS a.hpp ...)
# Installs a static library of the package as memcached_cfg::NAME (also an
# alias of that name in the build) with its public HEADERS; headers left out
# of the list (detail/ and other internals) stay out of the install.
function(mcfg_install_library target)
  cmake_parse_arguments(ARG "" "EXPORT_NAME" "HEADERS" ${ARGN})
  file(RELATIVE_PATH folder "${MCFG_SOURCE_ROOT}" "${CMAKE_CURRENT_SOURCE_DIR}")
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_EXPORT_NAME})
  add_library(memcached_cfg::${ARG_EXPORT_NAME} ALIAS ${target})
  install(TARGETS ${target} EXPORT memcached_cfgTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel)
  install(FILES ${ARG_HEADERS} DESTINATION ${MCFG_INSTALL_INCLUDEDIR}/${folder}
          COMPONENT devel)
endfunction()

# The package files; called once every library is declared.
function(mcfg_install_package)
  install(EXPORT memcached_cfgTargets NAMESPACE memcached_cfg::
          DESTINATION ${MCFG_INSTALL_CMAKEDIR} COMPONENT devel)
  configure_package_config_file(
    "${PROJECT_SOURCE_DIR}/cmake/memcached_cfgConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/memcached_cfgConfig.cmake"
    INSTALL_DESTINATION ${MCFG_INSTALL_CMAKEDIR})
  # 0.x: a minor version may break the API, so only 0.2.* satisfies 0.2.
  write_basic_package_version_file(
    "${PROJECT_BINARY_DIR}/memcached_cfgConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
  install(FILES "${PROJECT_BINARY_DIR}/memcached_cfgConfig.cmake"
                "${PROJECT_BINARY_DIR}/memcached_cfgConfigVersion.cmake"
                # Debian's libcaf-dev has no CMake package: the consumer
                # finds CAF with the same module the build uses.
                "${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake"
          DESTINATION ${MCFG_INSTALL_CMAKEDIR} COMPONENT devel)
endfunction()
