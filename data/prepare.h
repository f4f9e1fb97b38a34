// `baton prepare`: text files -> GPT-2 tokens -> llm.c token shards.
//
// Each input file is one document, written as <|endoftext|> followed by its
// tokens. Documents are split between validation and training by a hash of
// their name (path relative to the directory given, or the file's base name),
// so the split does not depend on the order or location of the inputs. Each
// split is cut into shards of at most shard_tokens tokens (a document may
// continue in the next shard): OUT/<name>_val_000000.bin, ...,
// OUT/<name>_train_000000.bin, ...
//
// A run never leaves a mix of old and new shards behind when it fails or is
// interrupted: every shard is first written (and fsynced) into
// OUT/.prepare-<name>.tmp (hidden, so shard globs over OUT do not see it);
// only when all are written are they renamed into OUT and the older
// <name>_{train,val}_* shards past the new last index removed. A failure
// before that point removes the temporary directory and leaves OUT as it
// was. Two runs with the same OUT and name must not run at the same time.
//
// Seq2seq mode (`seq2seq`): each non-blank line of each file is one example
// "SOURCE<TAB>TARGET", written as <|endoftext|> tokens(SOURCE) sep_token
// tokens(TARGET) (data/seq2seq_text.h has the exact format). Examples go to
// validation or training one by one, by a hash of "<document name>:<line>".
// A shard is cut only before an example, never inside one (a target
// without its source is useless), so a shard holds at most shard_tokens
// tokens unless it is one example longer than that, which gets a shard of
// its own. All files are read and checked once before anything is written,
// so a malformed line leaves OUT untouched, and read again to tokenize.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace baton {

struct PrepareOptions {
  std::string encoder_json;  // GPT-2 encoder.json
  std::string vocab_bpe;     // GPT-2 vocab.bpe
  std::string out_dir;       // created when missing
  double val_fraction = 0.05;  // in [0, 1)
  int64_t shard_tokens = 100000000;
  std::string name = "corpus";
  std::vector<std::string> inputs;  // text files, or directories searched recursively
  bool seq2seq = false;  // lines "SOURCE<TAB>TARGET" instead of whole-file documents
  // Written between an example's source and target; must be >= the
  // tokenizer's vocabulary size (no text encodes to it) and fit uint16.
  // Default 50258 = GPT-2's vocabulary size 50257 + 1.
  int sep_token = 50258;
  // Reads one input document (called from several threads at once). Empty:
  // read the file. For tests, to make a read fail at a chosen document.
  std::function<Result<std::string>(const std::string& path)> read_document;
};

struct PrepareSplitReport {
  int64_t documents = 0;  // document mode only
  int64_t examples = 0;   // seq2seq mode only
  int64_t tokens = 0;
  std::vector<std::string> shards;  // final paths under OUT
};

struct PrepareReport {
  PrepareSplitReport train, val;
  int64_t input_bytes = 0;
  int64_t skipped_empty_files = 0;  // seq2seq mode: files without any example
  int64_t skipped_blank_lines = 0;  // seq2seq mode: empty or whitespace-only lines
  std::vector<std::string> removed_stale_shards;  // older shards past the new last index
  double tokenize_seconds = 0;
};

Result<PrepareReport> PrepareTokenShards(const PrepareOptions& options);

// A document's name for the val/train split; inputs expand in sorted order.
struct PrepareDocument {
  std::string path;
  std::string name;
};
// Expands files and directories (recursively; hidden entries skipped) into
// documents, sorted by path. A missing input is an error naming it.
Result<std::vector<PrepareDocument>> ListPrepareDocuments(const std::vector<std::string>& inputs);
// Which documents (indices into `documents`) go to validation:
// round(n * val_fraction) of them, at least one when val_fraction > 0 and
// n >= 2, at most n - 1, chosen by the smallest hash of their names.
std::vector<bool> ChooseValidationDocuments(const std::vector<PrepareDocument>& documents, double val_fraction);

}  // namespace baton
