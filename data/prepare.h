// `baton prepare`: text files -> GPT-2 tokens -> llm.c token shards.
//
// Each input file is one document, written as <|endoftext|> followed by its
// tokens. Documents are split between validation and training by a hash of
// their name (path relative to the directory given, or the file's base name),
// so the split does not depend on the order or location of the inputs. Each
// split is cut into shards of at most shard_tokens tokens (a document may
// continue in the next shard): OUT/<name>_val_000000.bin, ...,
// OUT/<name>_train_000000.bin, ...
#pragma once

#include <cstdint>
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
};

struct PrepareSplitReport {
  int64_t documents = 0;
  int64_t tokens = 0;
  std::vector<std::string> shards;
};

struct PrepareReport {
  PrepareSplitReport train, val;
  int64_t input_bytes = 0;
  int64_t skipped_empty_files = 0;
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
