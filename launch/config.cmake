# The run configuration: text-format loading, --set overrides, validation,
# effective-config text and --help-config. Included from launch/CMakeLists.txt.
add_library(baton_config STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config_effective.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_fields.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_help.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_loader.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_override.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_validation.cc
)
target_link_libraries(baton_config PUBLIC baton_proto baton_runtime)
