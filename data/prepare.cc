#include "data/prepare.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <thread>

#include "data/bpe_tokenizer.h"
#include "data/token_shard.h"
#include "runtime/rng.h"

namespace baton {
namespace fs = std::filesystem;

namespace {

// Collects one split's tokens and writes them as numbered shards of at most
// `shard_tokens` tokens, named <stem>_NNNNNN.bin, into `write_dir`. The
// report lists where they go once committed: the same names in `final_dir`.
class ShardSequenceWriter {
 public:
  ShardSequenceWriter(std::string write_dir, std::string final_dir, std::string stem, int64_t shard_tokens,
                      PrepareSplitReport* report)
      : write_dir_(std::move(write_dir)),
        final_dir_(std::move(final_dir)),
        stem_(std::move(stem)),
        shard_tokens_(shard_tokens),
        report_(report) {}

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
    const std::string file = stem_ + suffix;
    BATON_RETURN_IF_ERROR(WriteTokenShard((fs::path(write_dir_) / file).string(), buffer_));
    report_->tokens += static_cast<int64_t>(buffer_.size());
    report_->shards.push_back((fs::path(final_dir_) / file).string());
    files_.push_back(file);
    buffer_.clear();
    return Status::OK();
  }

  // File names of the shards written so far, in order.
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::string write_dir_;
  std::string final_dir_;
  std::string stem_;
  int64_t shard_tokens_;
  PrepareSplitReport* report_;
  std::vector<uint16_t> buffer_;
  std::vector<std::string> files_;
};

// Removes a directory tree when it goes out of scope (the temporary output
// of a run, whether it succeeded or not).
class RemoveTreeOnExit {
 public:
  explicit RemoveTreeOnExit(std::string path) : path_(std::move(path)) {}
  RemoveTreeOnExit(const RemoveTreeOnExit&) = delete;
  RemoveTreeOnExit& operator=(const RemoveTreeOnExit&) = delete;
  ~RemoveTreeOnExit() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

 private:
  std::string path_;
};

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The whole file; a read error is an error, not a short (or empty) document.
Result<std::string> ReadTextFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string why = path + ": cannot open input text file: " + std::generic_category().message(err);
    return err == ENOENT ? Status::NotFound(why) : Status::IOError(why);
  }
  std::string text;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;) text.append(buffer, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return Status::IOError(path + ": read error: " + std::generic_category().message(err));
  return text;
}

bool IsHidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

// Shards named <stem>_NNNNNN.bin in `dir` with NNNNNN >= `first_stale` are
// left over from an earlier, larger run; a glob over the split would pick
// them up, so failing to remove one is an error.
Status RemoveStaleShards(const std::string& dir, const std::string& stem, size_t first_stale,
                         std::vector<std::string>* removed) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.size() != stem.size() + 11 || file.compare(0, stem.size(), stem) != 0 || file[stem.size()] != '_' ||
        file.compare(stem.size() + 7, 4, ".bin") != 0) {
      continue;
    }
    const std::string number = file.substr(stem.size() + 1, 6);
    if (!std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (std::stoul(number) >= first_stale) stale.push_back(it->path());
  }
  if (ec) return Status::IOError(dir + ": cannot list directory: " + ec.message());
  std::sort(stale.begin(), stale.end());
  for (const fs::path& path : stale) {
    if (!fs::remove(path, ec) && ec) {
      return Status::IOError(path.string() + ": cannot remove stale shard: " + ec.message());
    }
    removed->push_back(path.string());
  }
  return Status::OK();
}

// Moves the new shards from `tmp_dir` into `out_dir` and removes the stale
// ones past them. Every shard is already complete and fsynced, so this is
// only renames and unlinks within one file system.
//
// What remains: these steps are not one atomic operation. A reader that
// lists or opens OUT's shards during them (a few metadata operations, no
// data copied) can still see new shards next to old ones; one that already
// has a shard open keeps reading the old contents (a rename replaces the
// name, not the open file). A crash (power loss, kill -9) inside them can
// leave the mix behind; rerunning prepare repairs it.
Status CommitShards(const std::string& tmp_dir, const std::string& out_dir, const std::string& name,
                    const std::vector<std::pair<std::string, const std::vector<std::string>*>>& splits,
                    std::vector<std::string>* removed) {
  auto mixed = [&](const std::string& why) {
    return Status::IOError(why + "; " + out_dir + " may now hold a mix of old and new " + name +
                           " shards: run baton prepare again");
  };
  for (const auto& [stem, files] : splits) {
    for (const std::string& file : *files) {
      const std::string from = (fs::path(tmp_dir) / file).string();
      const std::string to = (fs::path(out_dir) / file).string();
      if (std::rename(from.c_str(), to.c_str()) != 0) {
        const int err = errno;
        return mixed("cannot rename " + from + " to " + to + ": " + std::generic_category().message(err));
      }
    }
  }
  for (const auto& [stem, files] : splits) {
    const Status status = RemoveStaleShards(out_dir, stem, files->size(), removed);
    if (!status.ok()) return mixed(status.message());
  }
  SyncDirectory(out_dir);
  return Status::OK();
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
  // All shards go to a hidden directory first (see prepare.h); one left by an
  // interrupted run is stale.
  const std::string tmp_dir = (fs::path(options.out_dir) / (".prepare-" + options.name + ".tmp")).string();
  fs::remove_all(tmp_dir, ec);
  if (ec) return Status::IOError(tmp_dir + ": cannot remove a leftover temporary directory: " + ec.message());
  fs::create_directory(tmp_dir, ec);
  if (ec) return Status::IOError(tmp_dir + ": cannot create temporary directory: " + ec.message());
  const RemoveTreeOnExit remove_tmp_dir(tmp_dir);

  const std::vector<bool> is_val = ChooseValidationDocuments(documents, options.val_fraction);
  PrepareReport report;
  ShardSequenceWriter train(tmp_dir, options.out_dir, options.name + "_train", options.shard_tokens, &report.train);
  ShardSequenceWriter val(tmp_dir, options.out_dir, options.name + "_val", options.shard_tokens, &report.val);
  std::function<Result<std::string>(const std::string&)> read_document = ReadTextFile;
  if (options.read_document) read_document = options.read_document;

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
          Result<std::string> text = read_document(documents[i].path);
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
  BATON_RETURN_IF_ERROR(CommitShards(tmp_dir, options.out_dir, options.name,
                                     {{options.name + "_val", &val.files()}, {options.name + "_train", &train.files()}},
                                     &report.removed_stale_shards));
  return report;
}

}  // namespace baton
