// GPT-2's pre-tokenizer: splits text into the pieces that BPE then encodes
// one by one, exactly as the reference JavaScript encoder's regex
//   /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
// does, written out by hand (no regex engine: std::regex has no \p{..}, and
// the behaviour must not depend on a library's Unicode tables).
//
// Bytes that are not valid UTF-8 count as "other" characters (neither space,
// letter nor number), so every byte of the input lands in exactly one piece.
#pragma once

#include <string_view>
#include <vector>

namespace baton {

// Appends the pieces of `text`, in order, to `pieces`; they cover `text`
// exactly and point into it.
void SplitGpt2Pieces(std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace baton
