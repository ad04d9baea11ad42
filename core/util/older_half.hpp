// drop_older_half: how the Store's bounded caches (AttrCache, DirNames,
// RemovedNames) make room once full of entries that are all still fresh
// (a writeback mount's hour-long ttl): the older half goes, the newest
// stay, and making room costs a constant amount an entry.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <vector>

namespace redisfs {

// Erases from `map` the entries `may_go` admits whose stamp(entry) is at
// or below the median of theirs (all of them when the stamps are equal),
// calling gone(entry) on each first.
template <class Map, class Stamp, class MayGo, class Gone>
void drop_older_half(Map& map, Stamp stamp, MayGo may_go, Gone gone) {
  std::vector<decltype(stamp(map.begin()->second))> stamps;
  stamps.reserve(map.size());
  for (const auto& kv : map) {
    if (may_go(kv.second)) {
      stamps.push_back(stamp(kv.second));
    }
  }
  if (stamps.empty()) {
    return;
  }
  auto middle = stamps.begin() + static_cast<std::ptrdiff_t>((stamps.size() - 1) / 2);
  std::nth_element(stamps.begin(), middle, stamps.end());
  const auto cutoff = *middle;
  std::erase_if(map, [&](const auto& kv) {
    if (!may_go(kv.second) || cutoff < stamp(kv.second)) {
      return false;
    }
    gone(kv.second);
    return true;
  });
}

}  // namespace redisfs
