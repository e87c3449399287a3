# gridline-gateway: a grid gateway feeding JSON lines into case.create through an on-disk
# spool (clients/gridline_gateway.c). jansson parses and writes the JSON.
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)

add_executable(gridline-gateway ${CMAKE_CURRENT_SOURCE_DIR}/gridline_gateway.c)
target_link_libraries(gridline-gateway PRIVATE gridline_client PkgConfig::JANSSON)

install(TARGETS gridline-gateway RUNTIME DESTINATION bin)
