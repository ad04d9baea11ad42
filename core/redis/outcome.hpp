// The outcome record's reply (core/lua/outcome.inc): a change script
// records what it answered as cmsgpack.pack(reply), Redis's own C encoder,
// which costs the server a few microseconds where building RESP text in Lua
// cost tens (a create answered about 60 strings). After a lost reply the
// client reads the record back (Connection::recover) and needs the reply as
// the server would have sent it: outcome_to_resp rewrites the MessagePack
// as that RESP, by Redis's rules for a Lua value:
//
//   number           -> integer (truncated towards zero)
//   string           -> bulk string
//   true / false     -> :1 / nil
//   nil              -> nil
//   {err = "..."}    -> error,  {ok = "..."} -> status
//   {v1, v2, ...}    -> array of v1, v2, ... up to the first nil
//
// (A table cmsgpack writes as a map, because it is not a plain sequence,
// follows the same rules: err, then ok, then its keys 1, 2, ... in order.)
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace redisfs {

// EIO for anything that is not one whole MessagePack value.
Result<std::string> outcome_to_resp(std::string_view msgpack);

}  // namespace redisfs
