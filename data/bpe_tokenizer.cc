#include "data/bpe_tokenizer.h"

#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/byte_level_alphabet.h"
#include "data/gpt2_pretokenizer.h"
#include "data/unicode_categories.h"
#include "data/utf8.h"

namespace baton {

// Words repeat a lot in text, and BPE on a word is quadratic in its length,
// so results are kept per piece. The cache is split into independently
// locked parts so that threads encoding different documents rarely wait for
// each other; the cap bounds memory on huge corpora.
struct BpeTokenizer::WordCache {
  static constexpr size_t kParts = 64;
  static constexpr size_t kMaxEntriesPerPart = 1 << 14;
  struct Part {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> ids;
  };
  Part parts[kParts];
  Part& For(std::string_view word) { return parts[std::hash<std::string_view>{}(word) % kParts]; }
};

namespace {

Result<std::string> ReadWholeFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open " + what);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read error");
  return buffer.str();
}

// The bytes a vocab-file string stands for (each character is one byte).
Result<std::string> BpeTextToBytes(std::string_view text) {
  std::string bytes;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8CodePoint u = DecodeUtf8At(text, pos);
    const int byte = u.valid ? BpeCharToByte(u.code_point) : -1;
    if (byte < 0) {
      char hex[16];
      snprintf(hex, sizeof(hex), "U+%04X", static_cast<unsigned>(u.code_point));
      return Status::Corruption("\"" + std::string(text) + "\" contains " + hex +
                                ", which is not a character of GPT-2's byte-level alphabet");
    }
    bytes.push_back(static_cast<char>(byte));
    pos += u.length;
  }
  return bytes;
}

// Splits a line on JavaScript whitespace, dropping empty parts (what the
// reference does with x.split(/(\s+)/).filter(e => e.trim().length > 0)).
std::vector<std::string_view> SplitOnWhitespace(std::string_view line) {
  std::vector<std::string_view> parts;
  size_t start = std::string_view::npos;
  for (size_t pos = 0; pos < line.size();) {
    const Utf8CodePoint u = DecodeUtf8At(line, pos);
    const bool space = u.valid && IsJsWhitespace(u.code_point);
    if (space && start != std::string_view::npos) {
      parts.push_back(line.substr(start, pos - start));
      start = std::string_view::npos;
    } else if (!space && start == std::string_view::npos) {
      start = pos;
    }
    pos += u.length;
  }
  if (start != std::string_view::npos) parts.push_back(line.substr(start));
  return parts;
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

Result<BpeTokenizer> BpeTokenizer::Load(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  BpeTokenizer tok;
  tok.cache_ = std::make_unique<WordCache>();

  BATON_ASSIGN_OR_RETURN(std::string encoder_text, ReadWholeFile(encoder_json_path, "the BPE encoder (encoder.json)"));
  nlohmann::json encoder = nlohmann::json::parse(encoder_text, nullptr, /*allow_exceptions=*/false);
  if (encoder.is_discarded() || !encoder.is_object() || encoder.empty()) {
    return Status::Corruption(encoder_json_path + ": expected a JSON object mapping token strings to ids");
  }
  for (const auto& [token, id_json] : encoder.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() >= (1 << 24)) {
      return Status::Corruption(encoder_json_path + ": token \"" + token + "\" has id " + id_json.dump() +
                                ", expected an integer in [0, 2^24)");
    }
    const int id = id_json.get<int>();
    Result<std::string> bytes = BpeTextToBytes(token);
    if (!bytes.ok()) return bytes.status().WithContext(encoder_json_path);
    if (id >= static_cast<int>(tok.id_to_bytes_.size())) {
      tok.id_to_bytes_.resize(id + 1);
      tok.id_defined_.resize(id + 1, false);
    }
    if (tok.id_defined_[id]) return Status::Corruption(encoder_json_path + ": id " + std::to_string(id) + " is used twice");
    tok.id_to_bytes_[id] = *bytes;
    tok.id_defined_[id] = true;
    tok.bytes_to_id_[*bytes] = id;
    if (token == "<|endoftext|>") tok.end_of_text_ = id;
  }
  for (int b = 0; b < 256; ++b) {
    if (!tok.bytes_to_id_.count(std::string(1, static_cast<char>(b)))) {
      return Status::Corruption(encoder_json_path + ": no token for byte " + std::to_string(b) +
                                "; a byte-level vocabulary needs one for each of the 256 bytes");
    }
  }

  BATON_ASSIGN_OR_RETURN(std::string merges_text, ReadWholeFile(vocab_bpe_path, "the BPE merges (vocab.bpe)"));
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    const size_t nl = merges_text.find('\n', start);
    lines.push_back(std::string_view(merges_text).substr(start, nl == std::string::npos ? nl : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (lines.size() < 2 || lines[0].rfind("#version", 0) != 0) {
    return Status::Corruption(vocab_bpe_path + ": expected a \"#version\" line followed by one merge per line");
  }
  // Like the reference: merges are lines[1 .. n-1), i.e. the header and the
  // text after the last newline (normally empty) are not merges. The rank
  // key is the merge's parts joined with ',', because the reference indexes
  // a JavaScript object with the pair array, whose string form is "a,b";
  // a later merge with the same key wins, as it does there.
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::string key;
    bool representable = true;
    for (std::string_view part : SplitOnWhitespace(lines[i])) {
      Result<std::string> bytes = BpeTextToBytes(part);
      if (!bytes.ok()) {
        representable = false;  // can never match a pair of byte-level symbols
        break;
      }
      if (!key.empty()) key.push_back(',');
      key += *bytes;
    }
    if (representable && !key.empty()) tok.merge_rank_[key] = static_cast<int>(i - 1);
  }
  if (tok.merge_rank_.empty()) return Status::Corruption(vocab_bpe_path + ": no merges found");
  return tok;
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int>* ids) const {
  WordCache::Part& cached = cache_->For(word);
  std::string word_key(word);
  {
    std::lock_guard<std::mutex> lock(cached.mutex);
    auto it = cached.ids.find(word_key);
    if (it != cached.ids.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // Every symbol is a contiguous span of the word: [starts[k], starts[k+1]).
  std::vector<size_t> starts(word.size() + 1);
  for (size_t i = 0; i <= word.size(); ++i) starts[i] = i;
  const auto symbol = [&](size_t k) { return word.substr(starts[k], starts[k + 1] - starts[k]); };
  std::string key;
  std::vector<size_t> merged;
  while (starts.size() > 2) {
    // The pair with the lowest rank; on a tie (only possible between pairs
    // whose comma-joined keys coincide) the last one, as in the reference.
    int best_rank = -1;
    size_t best = 0;
    for (size_t k = 0; k + 2 < starts.size(); ++k) {
      key.assign(symbol(k));
      key.push_back(',');
      key.append(symbol(k + 1));
      auto it = merge_rank_.find(key);
      if (it != merge_rank_.end() && (best_rank < 0 || it->second <= best_rank)) {
        best_rank = it->second;
        best = k;
      }
    }
    if (best_rank < 0) break;
    const std::string first(symbol(best)), second(symbol(best + 1));
    // Merge every occurrence of (first, second), left to right, without overlaps.
    merged.clear();
    const size_t count = starts.size() - 1;
    for (size_t k = 0; k < count;) {
      merged.push_back(starts[k]);
      if (k + 1 < count && symbol(k) == first && symbol(k + 1) == second) {
        k += 2;
      } else {
        k += 1;
      }
    }
    merged.push_back(word.size());
    starts.swap(merged);
  }
  std::vector<int> word_ids;
  for (size_t k = 0; k + 1 < starts.size(); ++k) {
    auto it = bytes_to_id_.find(std::string(symbol(k)));
    if (it != bytes_to_id_.end()) {
      word_ids.push_back(it->second);
    } else {
      // A merge result missing from encoder.json (the reference would emit
      // `undefined`): keep the bytes, one token each.
      for (char b : symbol(k)) word_ids.push_back(bytes_to_id_.at(std::string(1, b)));
    }
  }
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  std::lock_guard<std::mutex> lock(cached.mutex);
  if (cached.ids.size() >= WordCache::kMaxEntriesPerPart) cached.ids.clear();
  cached.ids.emplace(std::move(word_key), std::move(word_ids));
}

void BpeTokenizer::EncodeAppend(std::string_view text, std::vector<int>* ids) const {
  std::vector<std::string_view> pieces;
  SplitGpt2Pieces(text, &pieces);
  for (std::string_view piece : pieces) EncodeWord(piece, ids);
}

std::vector<int> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  EncodeAppend(text, &ids);
  return ids;
}

std::string BpeTokenizer::Decode(const std::vector<int>& ids) const {
  std::string text;
  for (int id : ids) {
    if (id >= 0 && id < vocab_size() && id_defined_[id]) {
      text += id_to_bytes_[id];
    } else {
      text += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    }
  }
  return text;
}

}  // namespace baton
