# Writes OUT: one C++ raw string per core/lua/<name>.lua, each with
# prelude.lua in front, looked up by name through lua_script().
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
  string(APPEND body "  {\"${name}\", R\"redisfs_lua(-- ${name}.lua\n${prelude_text}\n${text})redisfs_lua\"},\n")
endforeach()
string(APPEND body "};\n}  // namespace\n\nconst ScriptSource* find_script(std::string_view name) {\n  for (const auto& s : k_scripts) {\n    if (s.name == name) {\n      return &s;\n    }\n  }\n  return nullptr;\n}\n}  // namespace redisfs::lua\n")
file(WRITE ${OUT} "${body}")
