# Writes OUT: one C++ raw string per core/lua/<name>.lua, each with
# prelude.lua in front, looked up by name through lua_script(). A script
# whose first line is a Redis 7 shebang (`#!lua flags=allow-oom`) keeps it
# first: Redis reads the flags only from the very first line. A script that
# writes (no `no-writes` flag) is wrapped in outcome.inc, unless it starts
# with `--! no-outcome` (the toolkit's scripts, which are never retried).
cmake_policy(SET CMP0054 NEW)  # if(name STREQUAL "prelude") compares strings
file(GLOB files ${DIR}/*.lua)
list(SORT files)
file(READ ${DIR}/prelude.lua prelude_text)
file(READ ${DIR}/outcome.inc outcome_text)
set(body "// Generated from core/lua/*.lua by core/embed_lua.cmake. Do not edit.\n#include \"lua_scripts.hpp\"\n\nnamespace redisfs::lua {\nnamespace {\nconst ScriptSource k_scripts[] = {\n")
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  if(name STREQUAL "prelude")
    continue()
  endif()
  file(READ ${f} text)
  set(shebang "")
  if(text MATCHES "^(#![^\n]*\n)")
    set(shebang "${CMAKE_MATCH_1}")
    string(LENGTH "${shebang}" shebang_length)
    string(SUBSTRING "${text}" ${shebang_length} -1 text)
  endif()
  set(script "${prelude_text}\n${text}")
  if(NOT shebang MATCHES "no-writes" AND NOT text MATCHES "^--! no-outcome")
    # A script that writes records its outcome (outcome.inc).
    string(REPLACE "@BODY@" "${script}" script "${outcome_text}")
  endif()
  string(APPEND body "  {\"${name}\", R\"redisfs_lua(${shebang}-- ${name}.lua\n${script})redisfs_lua\"},\n")
endforeach()
string(APPEND body "};\n}  // namespace\n\nconst ScriptSource* find_script(std::string_view name) {\n  for (const auto& s : k_scripts) {\n    if (s.name == name) {\n      return &s;\n    }\n  }\n  return nullptr;\n}\n}  // namespace redisfs::lua\n")
file(WRITE ${OUT} "${body}")
