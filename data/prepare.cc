#include "data/prepare.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <system_error>
#include <thread>

#include "data/bpe_tokenizer.h"
#include "data/seq2seq_text.h"
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

  // Appends one seq2seq example whole: shards are cut only before an
  // example. One longer than shard_tokens gets a shard of its own.
  Status AddExample(const std::vector<int>& ids) {
    ++report_->examples;
    const int64_t buffered = static_cast<int64_t>(buffer_.size());
    if (buffered > 0 && buffered + static_cast<int64_t>(ids.size()) > shard_tokens_) BATON_RETURN_IF_ERROR(Flush());
    for (int id : ids) buffer_.push_back(static_cast<uint16_t>(id));
    if (static_cast<int64_t>(buffer_.size()) >= shard_tokens_) return Flush();
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

namespace {

// The split of n named items (documents or examples) given the hashes of
// their names: see ChooseValidationDocuments. `name` is only called for ties.
std::vector<bool> ChooseValidationByHash(const std::vector<uint64_t>& hashes,
                                         const std::function<std::string(int64_t)>& name, double val_fraction) {
  const int64_t n = static_cast<int64_t>(hashes.size());
  std::vector<bool> is_val(hashes.size(), false);
  if (val_fraction <= 0 || n < 2) return is_val;
  const int64_t count = std::clamp<int64_t>(std::llround(n * val_fraction), 1, n - 1);
  std::vector<std::pair<uint64_t, int64_t>> order;  // (hash of name, index)
  order.reserve(hashes.size());
  for (int64_t i = 0; i < n; ++i) order.push_back({hashes[i], i});
  // Ties (equal hashes) are broken by the name, keeping the choice order-independent.
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : name(a.second) < name(b.second);
  });
  for (int64_t k = 0; k < count; ++k) is_val[order[k].second] = true;
  return is_val;
}

}  // namespace

std::vector<bool> ChooseValidationDocuments(const std::vector<PrepareDocument>& documents, double val_fraction) {
  std::vector<uint64_t> hashes;
  for (const PrepareDocument& d : documents) hashes.push_back(StreamId(d.name));
  return ChooseValidationByHash(hashes, [&](int64_t i) { return documents[i].name; }, val_fraction);
}

namespace {

using ReadDocumentFn = std::function<Result<std::string>(const std::string& path)>;

size_t WorkerThreads() { return std::max(1u, std::min(16u, std::thread::hardware_concurrency())); }

// Document mode: documents are read and tokenized in parallel a chunk at a
// time, then written in order, so the output does not depend on the thread
// count.
Status WriteDocuments(const std::vector<PrepareDocument>& documents, const std::vector<bool>& is_val,
                      const BpeTokenizer& tokenizer, const ReadDocumentFn& read_document, PrepareReport* report,
                      ShardSequenceWriter* train, ShardSequenceWriter* val) {
  const size_t threads = WorkerThreads();
  const size_t chunk = threads * 4;
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
      report->input_bytes += bytes[i - first];
      if (ids[i - first].empty()) {
        ++report->skipped_empty_files;
        continue;
      }
      BATON_RETURN_IF_ERROR((is_val[i] ? *val : *train).AddDocument(ids[i - first]));
    }
  }
  return Status::OK();
}

// The hash an example is split by. FNV-1a (StreamId) moves a name's last
// characters into the high bits of the hash only weakly, and example names
// differ only in their trailing line number, so by StreamId alone the
// validation examples would be a few long runs of consecutive lines; the
// SplitMix64 finalizer spreads them.
uint64_t ExampleHash(const std::string& name) {
  uint64_t z = StreamId(name);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Seq2seq pass 1: every example's line and hash, found before anything is
// written, so a malformed line fails the run early and the split can be
// chosen over all examples at once.
struct Seq2SeqIndex {
  std::vector<int64_t> first_example;  // per document, and one past the last example
  std::vector<int64_t> lines;          // per example
  std::vector<uint64_t> hashes;        // per example
};

Result<Seq2SeqIndex> IndexSeq2SeqExamples(const std::vector<PrepareDocument>& documents,
                                          const ReadDocumentFn& read_document, PrepareReport* report) {
  Seq2SeqIndex index;
  for (const PrepareDocument& document : documents) {
    index.first_example.push_back(static_cast<int64_t>(index.lines.size()));
    BATON_ASSIGN_OR_RETURN(const std::string text, read_document(document.path));
    BATON_ASSIGN_OR_RETURN(const Seq2SeqText parsed, ParseSeq2SeqText(text, document.path));
    report->input_bytes += static_cast<int64_t>(text.size());
    report->skipped_blank_lines += parsed.skipped_blank_lines;
    if (parsed.examples.empty()) ++report->skipped_empty_files;
    for (const Seq2SeqExample& example : parsed.examples) {
      index.lines.push_back(example.line);
      index.hashes.push_back(ExampleHash(Seq2SeqExampleName(document.name, example.line)));
    }
  }
  index.first_example.push_back(static_cast<int64_t>(index.lines.size()));
  return index;
}

// Seq2seq pass 2: reads the files again and writes their examples in order.
// Examples (of one file or of several small ones) are tokenized in parallel
// `chunk` at a time, so memory holds the texts being worked on and one
// chunk's tokens, not the corpus.
Status WriteSeq2SeqExamples(const std::vector<PrepareDocument>& documents, const Seq2SeqIndex& index,
                            const std::vector<bool>& is_val, const BpeTokenizer& tokenizer, int sep_token,
                            const ReadDocumentFn& read_document, ShardSequenceWriter* train,
                            ShardSequenceWriter* val) {
  const size_t threads = WorkerThreads();
  const size_t chunk = 4096;
  std::deque<std::string> texts;        // the files `pending` points into
  std::vector<Seq2SeqExample> pending;  // the examples after the first `written`, in order
  int64_t written = 0;
  auto write_pending = [&]() -> Status {
    for (size_t first = 0; first < pending.size(); first += chunk) {
      const size_t last = std::min(pending.size(), first + chunk);
      std::vector<std::vector<int>> ids(last - first);
      std::atomic<size_t> next{first};
      std::vector<std::thread> workers;
      for (size_t t = 0; t < std::min(threads, last - first); ++t) {
        workers.emplace_back([&] {
          for (size_t i = next++; i < last; i = next++) {
            AppendSeq2SeqExample(tokenizer, sep_token, pending[i], &ids[i - first]);
          }
        });
      }
      for (std::thread& w : workers) w.join();
      for (size_t i = first; i < last; ++i) {
        BATON_RETURN_IF_ERROR((is_val[written] ? *val : *train).AddExample(ids[i - first]));
        ++written;
      }
    }
    pending.clear();
    texts.clear();
    return Status::OK();
  };
  for (size_t d = 0; d < documents.size(); ++d) {
    Result<std::string> text = read_document(documents[d].path);
    if (!text.ok()) return text.status();
    // A deque keeps the earlier texts in place, so `pending`'s views stay valid.
    texts.push_back(std::move(text).value());
    BATON_ASSIGN_OR_RETURN(const Seq2SeqText parsed, ParseSeq2SeqText(texts.back(), documents[d].path));
    // The split was chosen from the first read; a file changed since would
    // put examples on the wrong side of it.
    const int64_t first = index.first_example[d];
    const int64_t count = index.first_example[d + 1] - first;
    bool same = static_cast<int64_t>(parsed.examples.size()) == count;
    for (int64_t k = 0; same && k < count; ++k) same = parsed.examples[k].line == index.lines[first + k];
    if (!same) {
      return Status::IOError(documents[d].path + ": changed while baton prepare was reading it (" +
                             std::to_string(parsed.examples.size()) + " examples now, " + std::to_string(count) +
                             " before)");
    }
    pending.insert(pending.end(), parsed.examples.begin(), parsed.examples.end());
    if (pending.size() >= chunk) BATON_RETURN_IF_ERROR(write_pending());
  }
  return write_pending();
}

}  // namespace

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
  if (options.seq2seq) {
    const std::string sep = "--sep-token " + std::to_string(options.sep_token) + ": ";
    const std::string vocab = std::to_string(tokenizer.vocab_size());
    if (options.sep_token < 0 || options.sep_token > 65535) {
      return Status::InvalidArgument(sep + "does not fit the uint16 tokens of llm.c shards; expected an id in " +
                                     vocab + "..65535");
    }
    if (options.sep_token == tokenizer.end_of_text()) {
      return Status::InvalidArgument(sep + "is <|endoftext|>, which starts every example; expected an id in " +
                                     vocab + "..65535");
    }
    if (options.sep_token < tokenizer.vocab_size()) {
      return Status::InvalidArgument(sep + "is a token of " + options.encoder_json + " (ids 0.." +
                                     std::to_string(tokenizer.vocab_size() - 1) +
                                     "), which text can encode to; expected an id in " + vocab + "..65535");
    }
  }
  ReadDocumentFn read_document = ReadTextFile;
  if (options.read_document) read_document = options.read_document;
  PrepareReport report;
  const auto start = std::chrono::steady_clock::now();
  Seq2SeqIndex index;
  if (options.seq2seq) {
    BATON_ASSIGN_OR_RETURN(index, IndexSeq2SeqExamples(documents, read_document, &report));
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

  ShardSequenceWriter train(tmp_dir, options.out_dir, options.name + "_train", options.shard_tokens, &report.train);
  ShardSequenceWriter val(tmp_dir, options.out_dir, options.name + "_val", options.shard_tokens, &report.val);
  if (options.seq2seq) {
    auto name = [&](int64_t i) {
      const size_t d = std::upper_bound(index.first_example.begin(), index.first_example.end(), i) -
                       index.first_example.begin() - 1;
      return Seq2SeqExampleName(documents[d].name, index.lines[i]);
    };
    const std::vector<bool> is_val = ChooseValidationByHash(index.hashes, name, options.val_fraction);
    BATON_RETURN_IF_ERROR(WriteSeq2SeqExamples(documents, index, is_val, tokenizer, options.sep_token, read_document,
                                               &train, &val));
  } else {
    const std::vector<bool> is_val = ChooseValidationDocuments(documents, options.val_fraction);
    BATON_RETURN_IF_ERROR(WriteDocuments(documents, is_val, tokenizer, read_document, &report, &train, &val));
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
