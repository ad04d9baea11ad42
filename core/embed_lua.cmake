# Writes OUT: one C++ raw string per core/lua/<name>.lua, each with
# prelude.lua in front, looked up by name through lua_script(). A script
# whose first line is a Redis 7 shebang (`#!lua flags=allow-oom`) keeps it
# first: Redis reads the flags only from the very first line.
cmake_policy(SET CMP0054 NEW)  # if(name STREQUAL "prelude") compares strings
file(GLOB files ${DIR}/*.lua)
list(SORT files)
file(READ ${DIR}/prelude.lua prelude_text)
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
  string(APPEND body "  {\"${name}\", R\"redisfs_lua(${shebang}-- ${name}.lua\n${prelude_text}\n${text})redisfs_lua\"},\n")
endforeach()
string(APPEND body "};\n}  // namespace\n\nconst ScriptSource* find_script(std::string_view name) {\n  for (const auto& s : k_scripts) {\n    if (s.name == name) {\n      return &s;\n    }\n  }\n  return nullptr;\n}\n}  // namespace redisfs::lua\n")
file(WRITE ${OUT} "${body}")
