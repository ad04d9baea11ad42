// The Lua scripts embedded from core/lua/*.lua (see core/embed_lua.cmake).
//
// A script is named by its constant, lua::<name> for core/lua/<name>.lua
// (lua::write, lua::alloc...), which the build writes into
// lua_script_ids.hpp from the list in core/CMakeLists.txt: a misspelt or
// missing script does not compile.
#pragma once

#include <cstddef>
#include <string_view>

namespace redisfs::lua {

struct ScriptSource {
  std::string_view name;
  std::string_view text;  // what is sent to the server (prelude included)
  bool writes;            // no `no-writes` flag in its shebang
  bool records;           // wrapped in outcome.inc: takes the outcome record's key and id
  bool resend;            // `--! resend:` a second run after a lost reply is as one (embed_lua.cmake)
};

class ScriptId {
 public:
  explicit constexpr ScriptId(std::size_t index) : m_index(index) {}
  constexpr std::size_t index() const { return m_index; }

 private:
  std::size_t m_index;
};

const ScriptSource& script_source(ScriptId id);

}  // namespace redisfs::lua

#include "lua_script_ids.hpp"  // generated: the constants
