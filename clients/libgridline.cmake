# libgridline: the installable C client library (gl_client, gl_feed), its headers and
# its pkg-config file. Included by clients/CMakeLists.txt.
#
# The protocol helpers the client needs are compiled into the shared library itself
# (not linked from the static gridline_protocol, which would drag in the city model).
# The target is "libgridline" because "gridline" is the tool; its file is
# libgridline.so.
set(GRIDLINE_PROTOCOL_DIR ${CMAKE_CURRENT_SOURCE_DIR}/../protocol)

add_library(libgridline SHARED
  gl_client.c gl_feed.c
  ${GRIDLINE_PROTOCOL_DIR}/mp_util.c
  ${GRIDLINE_PROTOCOL_DIR}/gl_error.c
  ${GRIDLINE_PROTOCOL_DIR}/mp_guard.c
  ${GRIDLINE_PROTOCOL_DIR}/mp_fast.c
  ${GRIDLINE_PROTOCOL_DIR}/mdp.c
  ${GRIDLINE_PROTOCOL_DIR}/keyfile.c)
set_target_properties(libgridline PROPERTIES
  OUTPUT_NAME gridline
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(libgridline PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${GRIDLINE_PROTOCOL_DIR})
# libconfig reads CURVE key files (keyfile.c).
target_link_libraries(libgridline PUBLIC PkgConfig::MSGPACK PRIVATE PkgConfig::ZMQ
                      PkgConfig::LIBCONFIG)

# The gridline tool follows the feed with gl_feed.
target_sources(gridline PRIVATE gl_feed.c)

include(GNUInstallDirs)
install(TARGETS libgridline LIBRARY DESTINATION lib)
install(FILES gl_client.h gl_feed.h ${GRIDLINE_PROTOCOL_DIR}/mp_util.h
              ${GRIDLINE_PROTOCOL_DIR}/gl_error.h
        DESTINATION include/gridline)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/gridline.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/gridline.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gridline.pc DESTINATION lib/pkgconfig)
