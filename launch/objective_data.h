// The training objective's view of the data (objective.kind): which example
// set a dataset becomes (causal-LM windows, masked-LM document chunks, UniLM
// seq2seq examples) and how its batches become micro-batches with their
// attention masks. Used for training and validation alike.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "data/batch_sampler.h"
#include "data/example_set.h"
#include "data/token_dataset.h"
#include "layers/micro_batch.h"
#include "proto/config.pb.h"
#include "runtime/status.h"

namespace baton {

// The seed of the validation sample: `baton train` and `baton eval` draw the
// validation micro-batches with ObjectiveSampler(config, val_data, kValidationSeed),
// so that every evaluation sees the same tokens, whatever the training seed or
// progress, and validation losses of different runs are comparable.
inline constexpr uint64_t kValidationSeed = 0x76616c6964ull;  // "valid"

// The examples of `data` under the config's objective; `seed` keys masked
// LM's random choices. `data` must outlive the set.
std::shared_ptr<const ExampleSet> ObjectiveExamples(const RunConfig& config, const TokenDataset& data, uint64_t seed);

// A sampler over ObjectiveExamples; errors name the dataset's glob.
Result<BatchSampler> ObjectiveSampler(const RunConfig& config, const TokenDataset& data, uint64_t seed);

// `count` micro-batches of `batch` examples each, on the host, masks included.
std::vector<MicroBatch> DrawMicroBatches(BatchSampler* sampler, int count, int batch);

// One line for the log: the objective and what its examples are.
std::string DescribeObjectiveData(const RunConfig& config, const BatchSampler& sampler, const TokenDataset& data);

}  // namespace baton
