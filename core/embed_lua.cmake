# Writes OUT: one C++ raw string per core/lua/<name>.lua (NAMES: the names
# in order, separated by commas),
# each with what it uses of prelude.lua in front, and OUT_IDS: one constant per script,
# lua::<name>, the only way to name a script to the runner (a misspelt name
# does not compile). A script whose first line is a Redis 7 shebang
# (`#!lua flags=allow-oom`) keeps it first: Redis reads the flags only from
# the very first line. A script that writes (no `no-writes` flag) is wrapped
# in outcome.inc, unless it starts with `--! no-outcome` (the toolkit's
# scripts: one marked `--! resend: why` is sent again after a lost reply, as
# a read is; the others never are).
cmake_policy(SET CMP0054 NEW)  # if(name STREQUAL "prelude") compares strings
string(REPLACE "," ";" NAMES "${NAMES}")  # comma-separated on the command line
file(READ ${DIR}/prelude.lua prelude_text)
file(READ ${DIR}/outcome.inc outcome_text)

# The prelude runs with every call of a script (EVALSHA runs the whole
# text): each of its local functions is a closure made anew, about 3 us a
# call for all of them (bench/RESULTS.md, session 14). So each script gets
# only the definitions it names, and those they name in turn. The prelude
# is cut into chunks at its blank lines: a chunk is one paragraph that
# defines names at its start of line (`local function f(` or `local n =`),
# with the paragraphs after it that define none (a comment, or the rest of
# a function with a blank line in it). A definition names only those
# before it (Lua's local scope), so one pass from the last chunk back finds
# them all. A name is found as a whole word anywhere in the text, comments
# too: one a comment mentions costs a closure (so a hot script's comments
# do not name prelude functions), never a missing function.
set(chunk_count 0)
set(rest "${prelude_text}")
while(NOT rest STREQUAL "")
  string(FIND "${rest}" "\n\n" at)
  if(at EQUAL -1)
    set(paragraph "${rest}")
    set(rest "")
  else()
    math(EXPR after "${at} + 2")
    string(SUBSTRING "${rest}" 0 ${at} paragraph)
    string(SUBSTRING "${rest}" ${after} -1 rest)
  endif()
  string(REGEX MATCHALL "(^|\n)local (function )?[A-Za-z_][A-Za-z0-9_]*" defines "${paragraph}")
  if(defines OR chunk_count EQUAL 0)
    set(names "")
    foreach(d ${defines})
      string(REGEX REPLACE "^\n?local (function )?" "" d "${d}")
      list(APPEND names ${d})
    endforeach()
    set(chunk_${chunk_count} "${paragraph}")
    set(chunk_names_${chunk_count} "${names}")
    math(EXPR chunk_count "${chunk_count} + 1")
  else()
    math(EXPR last "${chunk_count} - 1")
    string(APPEND chunk_${last} "\n\n${paragraph}")
  endif()
endwhile()
# The cut loses nothing: the chunks put back together are the prelude.
set(whole "${chunk_0}")
math(EXPR last "${chunk_count} - 1")
foreach(i RANGE 1 ${last})
  string(APPEND whole "\n\n${chunk_${i}}")
endforeach()
if(NOT whole STREQUAL prelude_text)
  message(FATAL_ERROR "embed_lua.cmake: prelude.lua did not cut into chunks cleanly")
endif()

# Writes to VAR the prelude chunks that TEXT (a script, with its wrapper)
# names, directly or through the chunks it keeps, in the prelude's order.
function(prelude_for text var)
  set(need "\n${text}\n")
  set(kept "")
  math(EXPR i "${chunk_count} - 1")
  while(i GREATER_EQUAL 0)
    set(keep FALSE)
    if(i EQUAL 0)
      set(keep TRUE)  # fail, which nearly all use, and the rules
    endif()
    foreach(n ${chunk_names_${i}})
      if(need MATCHES "[^A-Za-z0-9_.]${n}[^A-Za-z0-9_]")
        set(keep TRUE)
      endif()
    endforeach()
    if(keep)
      string(APPEND need "\n${chunk_${i}}\n")
      if(kept STREQUAL "")
        set(kept "${chunk_${i}}")
      else()
        set(kept "${chunk_${i}}\n\n${kept}")
      endif()
    endif()
    math(EXPR i "${i} - 1")
  endwhile()
  set(${var} "${kept}" PARENT_SCOPE)
endfunction()
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
  set(writes "true")
  if(shebang MATCHES "no-writes")
    set(writes "false")
  endif()
  # `--! resend: why` (a toolkit script): a second run after a lost reply
  # leaves what one run leaves and answers alike, so the runner sends it
  # again as it does a read (redis.cpp).
  set(resend "false")
  if(text MATCHES "\n--! resend:")
    set(resend "true")
  endif()
  set(records "false")
  set(wrapper "")
  if(writes AND NOT text MATCHES "^--! no-outcome")
    # A script that writes records its outcome (outcome.inc).
    set(records "true")
    set(wrapper "${outcome_text}")
  endif()
  prelude_for("${wrapper}\n${text}" prelude_kept)
  set(script "${prelude_kept}\n${text}")
  if(records)
    string(REPLACE "@BODY@" "${script}" script "${outcome_text}")
  endif()
  string(APPEND body "  {\"${name}\", R\"redisfs_lua(${shebang}-- ${name}.lua\n${script})redisfs_lua\", ${writes}, ${records}, ${resend}},\n")
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
