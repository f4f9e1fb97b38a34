#include "launch/objective_data.h"

#include "data/causal_lm_examples.h"
#include "data/masked_lm_examples.h"
#include "data/seq2seq_examples.h"
#include "launch/config_effective.h"

namespace baton {

static_assert(kExampleNoTarget == kIgnoreTarget, "data/ and layers/ must agree on the no-target id");

std::shared_ptr<const ExampleSet> ObjectiveExamples(const RunConfig& config, const TokenDataset& data, uint64_t seed) {
  const ObjectiveConfig& o = config.objective();
  const int seq_len = config.train().seq_len();
  switch (EffectiveObjective(config)) {
    case ObjectiveConfig::MASKED_LM: {
      MaskedLmOptions m;
      m.seq_len = seq_len;
      m.vocab = config.model().vocab();
      m.eot_token = o.eot_token();
      m.mask_token = o.mask_token();
      m.sep_token = o.sep_token();
      m.mask_fraction = o.mask_fraction();
      m.mask_token_fraction = o.mask_token_fraction();
      m.random_token_fraction = o.random_token_fraction();
      m.seed = seed;
      return std::make_shared<MaskedLmExamples>(data, m);
    }
    case ObjectiveConfig::SEQ2SEQ:
      return std::make_shared<Seq2SeqExamples>(data, seq_len, o.eot_token(), o.sep_token());
    default:
      return std::make_shared<CausalLmExamples>(data, seq_len);
  }
}

Result<BatchSampler> ObjectiveSampler(const RunConfig& config, const TokenDataset& data, uint64_t seed) {
  Result<BatchSampler> s = BatchSampler::Create(ObjectiveExamples(config, data, seed), seed);
  if (!s.ok())
    return s.status().WithContext("\"" + data.glob() + "\" (" + std::to_string(data.total_tokens()) + " tokens, objective " +
                                  ObjectiveConfig::Kind_Name(EffectiveObjective(config)) + ", train.seq_len " +
                                  std::to_string(config.train().seq_len()) + ")");
  return s;
}

std::vector<MicroBatch> DrawMicroBatches(BatchSampler* sampler, int count, int batch) {
  std::vector<MicroBatch> out(static_cast<size_t>(count));
  for (MicroBatch& mb : out) {
    ExampleBatch b;
    sampler->Next(batch, &b);
    mb.tokens = std::move(b.tokens);
    mb.targets = std::move(b.targets);
    mb.mask.lengths = std::move(b.lengths);  // undefined for causal LM: full causal windows
    mb.mask.prefix_lengths = std::move(b.prefix_lengths);
  }
  return out;
}

std::string DescribeObjectiveData(const RunConfig& config, const BatchSampler& sampler, const TokenDataset& data) {
  std::string s = ObjectiveConfig::Kind_Name(EffectiveObjective(config)) + ": " + std::to_string(sampler.num_windows()) +
                  " examples of at most " + std::to_string(sampler.seq_len()) + " tokens in \"" + data.glob() + "\"";
  if (const auto* s2s = dynamic_cast<const Seq2SeqExamples*>(&sampler.examples()); s2s && s2s->skipped() > 0)
    s += "; WARNING: " + std::to_string(s2s->skipped()) +
         " spans without objective.sep_token skipped (not written by `baton prepare --seq2seq`?)";
  return s;
}

}  // namespace baton
