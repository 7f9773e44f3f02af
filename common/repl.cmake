# SPDX-License-Identifier: GPL-2.0-or-later
#
# The replication link codec (repl.c) joins remus_common; included from
# common/CMakeLists.txt after add_library(remus_common ...).  The guard
# lets the repl tests include it too, so they build whether or not the
# include has landed there yet.
include_guard(GLOBAL)
target_sources(remus_common PRIVATE ${CMAKE_CURRENT_LIST_DIR}/repl.c)
target_link_libraries(remus_common PUBLIC PkgConfig::XXHASH)
