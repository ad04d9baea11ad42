// The Lua scripts embedded from core/lua/*.lua (see core/embed_lua.cmake).
#pragma once

#include <string_view>

namespace redisfs::lua {

struct ScriptSource {
  std::string_view name;
  std::string_view text;
};

const ScriptSource* find_script(std::string_view name);

}  // namespace redisfs::lua
