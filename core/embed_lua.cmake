# Writes OUT: one C++ raw string per core/lua/<name>.lua (NAMES: the names
# in order, separated by commas),
# each with prelude.lua in front, and OUT_IDS: one constant per script,
# lua::<name>, the only way to name a script to the runner (a misspelt name
# does not compile). A script whose first line is a Redis 7 shebang
# (`#!lua flags=allow-oom`) keeps it first: Redis reads the flags only from
# the very first line. A script that writes (no `no-writes` flag) is wrapped
# in outcome.inc, unless it starts with `--! no-outcome` (the toolkit's
# scripts, which are never retried).
cmake_policy(SET CMP0054 NEW)  # if(name STREQUAL "prelude") compares strings
string(REPLACE "," ";" NAMES "${NAMES}")  # comma-separated on the command line
file(READ ${DIR}/prelude.lua prelude_text)
file(READ ${DIR}/outcome.inc outcome_text)
set(body "// Generated from core/lua/*.lua by core/embed_lua.cmake. Do not edit.\n#include <iterator>\n\n#include \"redis/lua_scripts.hpp\"\n\nnamespace redisfs::lua {\nnamespace {\nconst ScriptSource k_scripts[] = {\n")
set(ids "// Generated from core/lua/*.lua by core/embed_lua.cmake. Do not edit.\n// Included by lua_scripts.hpp: one constant per script.\n#pragma once\n\nnamespace redisfs::lua {\n")
set(index 0)
foreach(name ${NAMES})
  if(name STREQUAL "prelude")
    message(FATAL_ERROR "prelude.lua is in front of every script, not a script")
  endif()
  file(READ ${DIR}/${name}.lua text)
  set(shebang "")
  if(text MATCHES "^(#![^\n]*\n)")
    set(shebang "${CMAKE_MATCH_1}")
    string(LENGTH "${shebang}" shebang_length)
    string(SUBSTRING "${text}" ${shebang_length} -1 text)
  endif()
  set(script "${prelude_text}\n${text}")
  set(writes "true")
  if(shebang MATCHES "no-writes")
    set(writes "false")
  endif()
  set(records "false")
  if(writes AND NOT text MATCHES "^--! no-outcome")
    # A script that writes records its outcome (outcome.inc).
    string(REPLACE "@BODY@" "${script}" script "${outcome_text}")
    set(records "true")
  endif()
  string(APPEND body "  {\"${name}\", R\"redisfs_lua(${shebang}-- ${name}.lua\n${script})redisfs_lua\", ${writes}, ${records}},\n")
  string(APPEND ids "inline constexpr ScriptId ${name}{${index}};  // core/lua/${name}.lua\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND ids "inline constexpr std::size_t k_script_count = ${index};\n}  // namespace redisfs::lua\n")
string(APPEND body "};\n}  // namespace\n\nstatic_assert(std::size(k_scripts) == k_script_count);\n\nconst ScriptSource& script_source(ScriptId id) { return k_scripts[id.index()]; }\n}  // namespace redisfs::lua\n")
file(WRITE ${OUT} "${body}")
# Rewritten only when it changes: every file that runs a script includes it.
file(WRITE ${OUT_IDS}.tmp "${ids}")
file(COPY_FILE ${OUT_IDS}.tmp ${OUT_IDS} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT_IDS}.tmp)
