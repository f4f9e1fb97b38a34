#include "data/prepare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "data/bpe_tokenizer.h"
#include "data/token_shard.h"
#include "runtime/rng.h"

namespace baton {
namespace fs = std::filesystem;

namespace {

// Collects one split's tokens and writes them as numbered shards of at most
// `shard_tokens` tokens.
class ShardSequenceWriter {
 public:
  ShardSequenceWriter(std::string prefix, int64_t shard_tokens, PrepareSplitReport* report)
      : prefix_(std::move(prefix)), shard_tokens_(shard_tokens), report_(report) {}

  Status AddDocument(const std::vector<int>& ids) {
    ++report_->documents;
    for (int id : ids) {
      buffer_.push_back(static_cast<uint16_t>(id));
      if (static_cast<int64_t>(buffer_.size()) == shard_tokens_) BATON_RETURN_IF_ERROR(Flush());
    }
    return Status::OK();
  }

  Status Flush() {
    if (buffer_.empty()) return Status::OK();
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "_%06zu.bin", report_->shards.size());
    const std::string path = prefix_ + suffix;
    BATON_RETURN_IF_ERROR(WriteTokenShard(path, buffer_));
    report_->tokens += static_cast<int64_t>(buffer_.size());
    report_->shards.push_back(path);
    buffer_.clear();
    return Status::OK();
  }

 private:
  std::string prefix_;
  int64_t shard_tokens_;
  PrepareSplitReport* report_;
  std::vector<uint16_t> buffer_;
};

Result<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open input text file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read error");
  return buffer.str();
}

bool IsHidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

// Shards named <prefix>_NNNNNN.bin with NNNNNN >= `first_stale` are left
// over from an earlier, larger run; a glob over the split would pick them up.
std::vector<std::string> RemoveStaleShards(const std::string& dir, const std::string& stem, size_t first_stale) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() != stem.size() + 11 || file.compare(0, stem.size(), stem) != 0 || file[stem.size()] != '_' ||
        file.compare(stem.size() + 7, 4, ".bin") != 0) {
      continue;
    }
    const std::string number = file.substr(stem.size() + 1, 6);
    if (!std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (std::stoul(number) < first_stale) continue;
    if (fs::remove(entry.path(), ec)) removed.push_back(entry.path().string());
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace

Result<std::vector<PrepareDocument>> ListPrepareDocuments(const std::vector<std::string>& inputs) {
  std::vector<PrepareDocument> documents;
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st)) return Status::NotFound(input + ": no such file or directory");
    if (fs::is_regular_file(st)) {
      documents.push_back({input, fs::path(input).filename().string()});
      continue;
    }
    if (!fs::is_directory(st)) return Status::InvalidArgument(input + ": not a regular file or directory");
    std::vector<PrepareDocument> found;
    fs::recursive_directory_iterator it(input, fs::directory_options::follow_directory_symlink, ec), end;
    if (ec) return Status::IOError(input + ": cannot list directory: " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) return Status::IOError(input + ": cannot list directory: " + ec.message());
      if (IsHidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) {
        found.push_back({it->path().string(), fs::relative(it->path(), input).generic_string()});
      }
    }
    if (found.empty()) return Status::NotFound(input + ": directory has no files");
    documents.insert(documents.end(), found.begin(), found.end());
  }
  std::sort(documents.begin(), documents.end(),
            [](const PrepareDocument& a, const PrepareDocument& b) { return a.path < b.path; });
  return documents;
}

std::vector<bool> ChooseValidationDocuments(const std::vector<PrepareDocument>& documents, double val_fraction) {
  const int64_t n = static_cast<int64_t>(documents.size());
  std::vector<bool> is_val(documents.size(), false);
  if (val_fraction <= 0 || n < 2) return is_val;
  const int64_t count = std::clamp<int64_t>(std::llround(n * val_fraction), 1, n - 1);
  std::vector<std::pair<uint64_t, int64_t>> order;  // (hash of name, index)
  for (int64_t i = 0; i < n; ++i) order.push_back({StreamId(documents[i].name), i});
  // Ties (equal hashes) are broken by the name, keeping the choice order-independent.
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : documents[a.second].name < documents[b.second].name;
  });
  for (int64_t k = 0; k < count; ++k) is_val[order[k].second] = true;
  return is_val;
}

Result<PrepareReport> PrepareTokenShards(const PrepareOptions& options) {
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    return Status::InvalidArgument("--val-fraction " + std::to_string(options.val_fraction) + ": expected 0 <= f < 1");
  }
  if (options.shard_tokens <= 0 || options.shard_tokens > 2147483647) {
    return Status::InvalidArgument("--shard-tokens " + std::to_string(options.shard_tokens) +
                                   ": expected 1..2147483647 (the shard header count is int32)");
  }
  if (options.name.empty() || options.name.find('/') != std::string::npos) {
    return Status::InvalidArgument("--name \"" + options.name + "\": expected a non-empty file name prefix");
  }
  if (options.inputs.empty()) return Status::InvalidArgument("no input files or directories given");
  BATON_ASSIGN_OR_RETURN(std::vector<PrepareDocument> documents, ListPrepareDocuments(options.inputs));
  BATON_ASSIGN_OR_RETURN(BpeTokenizer tokenizer, BpeTokenizer::Load(options.encoder_json, options.vocab_bpe));
  if (tokenizer.end_of_text() < 0) {
    return Status::InvalidArgument(options.encoder_json + ": has no \"<|endoftext|>\" token to start documents with");
  }
  if (tokenizer.vocab_size() > 65536) {
    return Status::InvalidArgument(options.encoder_json + ": " + std::to_string(tokenizer.vocab_size()) +
                                   " tokens do not fit the uint16 tokens of llm.c shards");
  }
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) return Status::IOError(options.out_dir + ": cannot create output directory: " + ec.message());

  const std::vector<bool> is_val = ChooseValidationDocuments(documents, options.val_fraction);
  PrepareReport report;
  const std::string stem = (fs::path(options.out_dir) / options.name).string();
  ShardSequenceWriter train(stem + "_train", options.shard_tokens, &report.train);
  ShardSequenceWriter val(stem + "_val", options.shard_tokens, &report.val);

  // Documents are read and tokenized in parallel a chunk at a time, then
  // written in order, so the output does not depend on the thread count.
  const size_t threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  const size_t chunk = threads * 4;
  const auto start = std::chrono::steady_clock::now();
  for (size_t first = 0; first < documents.size(); first += chunk) {
    const size_t last = std::min(documents.size(), first + chunk);
    std::vector<std::vector<int>> ids(last - first);
    std::vector<Status> errors(last - first);
    std::vector<int64_t> bytes(last - first, 0);
    std::atomic<size_t> next{first};
    std::vector<std::thread> workers;
    for (size_t t = 0; t < std::min(threads, last - first); ++t) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < last; i = next++) {
          Result<std::string> text = ReadTextFile(documents[i].path);
          if (!text.ok()) {
            errors[i - first] = text.status();
            continue;
          }
          bytes[i - first] = static_cast<int64_t>(text->size());
          if (text->empty()) continue;
          ids[i - first].push_back(tokenizer.end_of_text());
          tokenizer.EncodeAppend(*text, &ids[i - first]);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    for (size_t i = first; i < last; ++i) {
      BATON_RETURN_IF_ERROR(errors[i - first]);
      report.input_bytes += bytes[i - first];
      if (ids[i - first].empty()) {
        ++report.skipped_empty_files;
        continue;
      }
      BATON_RETURN_IF_ERROR((is_val[i] ? val : train).AddDocument(ids[i - first]));
    }
  }
  BATON_RETURN_IF_ERROR(train.Flush());
  BATON_RETURN_IF_ERROR(val.Flush());
  report.tokenize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [split, shards] : {std::pair<std::string, size_t>{"_train", report.train.shards.size()},
                                      std::pair<std::string, size_t>{"_val", report.val.shards.size()}}) {
    for (std::string& path : RemoveStaleShards(options.out_dir, options.name + split, shards)) {
      report.removed_stale_shards.push_back(std::move(path));
    }
  }
  return report;
}

}  // namespace baton
