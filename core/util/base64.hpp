// Base64 (RFC 4648, standard alphabet, padded) and strict UTF-8 validation.
//
// Both sit on the hot path of dumping and restoring: every byte string that
// goes into a dump is checked with is_valid_utf8() and, when it is not text,
// base64-encoded. So both work on whole buffers: the encoder sizes its output
// once and fills it four characters at a time, the validator skips ASCII
// eight bytes at a time.
//
// The decoder is strict, because a dump that was altered must not restore
// quietly: the length must be a multiple of four, '=' may appear only as the
// last one or two characters, the unused bits before the padding must be
// zero (the canonical encoding), and no whitespace or other character is
// accepted. Anything else is EINVAL.
//
// is_valid_utf8() follows Unicode table 3-7 (the same rule JSON parsers such
// as nlohmann::json apply): it rejects overlong forms, UTF-16 surrogates
// (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and
// truncated sequences.
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace redisfs {

std::string base64_encode(std::string_view data);
void base64_encode_append(std::string& out, std::string_view data);
Result<std::string> base64_decode(std::string_view text);

bool is_valid_utf8(std::string_view data);

}  // namespace redisfs
