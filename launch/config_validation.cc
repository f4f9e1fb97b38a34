#include "launch/config_validation.h"

#include <cmath>
#include <vector>

#include "launch/config_effective.h"
#include "launch/config_fields.h"
#include "proto/options.pb.h"

namespace baton {
namespace {

namespace pb = google::protobuf;

void Add(std::string* problems, const std::string& source, const std::string& line) {
  if (!problems->empty()) *problems += "\n";
  *problems += source + ": " + line;
}

// Integers are compared as doubles: the bounds are doubles in the proto, and
// every bound in use is far below 2^53.
bool NumericValue(const pb::Message& m, const pb::FieldDescriptor* f, double* value, std::string* text) {
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      *value = r->GetInt32(m, f);
      *text = std::to_string(r->GetInt32(m, f));
      return true;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      *value = static_cast<double>(r->GetInt64(m, f));
      *text = std::to_string(r->GetInt64(m, f));
      return true;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      *value = r->GetUInt32(m, f);
      *text = std::to_string(r->GetUInt32(m, f));
      return true;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      *value = static_cast<double>(r->GetUInt64(m, f));
      *text = std::to_string(r->GetUInt64(m, f));
      return true;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      *value = r->GetDouble(m, f);
      *text = FormatConfigNumber(*value);
      return true;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      *value = r->GetFloat(m, f);
      *text = FormatConfigNumber(*value);
      return true;
    default:
      return false;
  }
}

void CheckRangesBelow(const pb::Message& message, const std::string& prefix, const std::string& source,
                      std::string* problems) {
  const pb::Descriptor* type = message.GetDescriptor();
  const pb::Reflection* r = message.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* f = type->field(i);
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->is_repeated()) continue;  // no list fields carry bounds today
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      // An unset sub-message reads as its default instance, whose defaults
      // must be in range too.
      CheckRangesBelow(r->GetMessage(message, f), path, source, problems);
      continue;
    }
    double value;
    std::string text;
    if (!NumericValue(message, f, &value, &text)) continue;
    // NaN compares false against every bound, so it would pass unnoticed.
    if (!std::isfinite(value)) {
      Add(problems, source, path + " = " + text + " is not a finite number");
      continue;
    }
    const pb::FieldOptions& options = f->options();
    if (options.HasExtension(baton::min) && value < options.GetExtension(baton::min)) {
      Add(problems, source,
          path + " = " + text + " is below the minimum " + FormatConfigNumber(options.GetExtension(baton::min)));
    }
    if (options.HasExtension(baton::max) && value > options.GetExtension(baton::max)) {
      Add(problems, source,
          path + " = " + text + " is above the maximum " + FormatConfigNumber(options.GetExtension(baton::max)));
    }
  }
}

void CheckModel(const ModelConfig& model, const TrainConfig& train, const std::string& source, std::string* problems) {
  // Only meaningful once heads passed its range check; heads <= 0 is already reported.
  if (model.heads() > 0) {
    if (model.hidden() % model.heads() != 0) {
      Add(problems, source,
          "model.hidden = " + std::to_string(model.hidden()) + " is not divisible by model.heads = " +
              std::to_string(model.heads()) + " (every head gets hidden / heads dimensions)");
    } else if (model.family() != ModelConfig::GPT2 && (model.hidden() / model.heads()) % 2 != 0) {
      Add(problems, source,
          "model.family = " + ModelConfig::Family_Name(model.family()) + " needs an even head size, but model.hidden / model.heads = " +
              std::to_string(model.hidden()) + " / " + std::to_string(model.heads()) + " = " +
              std::to_string(model.hidden() / model.heads()) + " (rotary positions rotate pairs of dimensions)");
    }
  }
  if (train.seq_len() > model.max_positions()) {
    Add(problems, source,
        "train.seq_len = " + std::to_string(train.seq_len()) + " exceeds model.max_positions = " +
            std::to_string(model.max_positions()) + " (the model accepts no longer sequences)");
  }
}

void CheckCheckpoint(const RunConfig& config, const std::string& source, std::string* problems) {
  const CheckpointConfig& c = config.checkpoint();
  if (c.dir().find('\n') != std::string::npos) Add(problems, source, "checkpoint.dir must be one line");
  if (c.wall_time_minutes() > 0 && c.wall_time_minutes() < 1.0 / 60)
    Add(problems, source, "checkpoint.wall_time_minutes = " + std::to_string(c.wall_time_minutes()) +
                              " leaves no time to train (use 0 for no budget)");
}

void CheckDevice(const RunConfig& config, const std::string& source, std::string* problems) {
  if (config.train().device() != TrainConfig::CUDA) return;
#if !BATON_CUDA
  Add(problems, source, "train.device = CUDA, but this build has no CUDA backend (configure with -DBATON_CUDA=ON)");
#endif
  const ModelConfig& m = config.model();
  const int64_t head = m.heads() > 0 ? m.hidden() / m.heads() : 0;
  if (head != 32 && head != 64 && head != 128)
    Add(problems, source,
        "model.hidden / model.heads = " + std::to_string(head) +
            ": the GPU attention kernel supports head sizes 32, 64 and 128 (GPT-2 uses 64)");
}

void CheckObjective(const RunConfig& config, const std::string& source, std::string* problems) {
  const ObjectiveConfig& o = config.objective();
  const ObjectiveConfig::Kind kind = EffectiveObjective(config);
  const int vocab = config.model().vocab();
  auto token = [&](const char* field, int id, const char* why) {
    if (id >= vocab)
      Add(problems, source,
          std::string("objective.") + field + " = " + std::to_string(id) + " is not below model.vocab = " +
              std::to_string(vocab) + " (" + why + "; GPT-2's tokenizer has 50257 ids, so set model.vocab to 50259)");
  };
  const int seq = config.train().seq_len();
  if (kind == ObjectiveConfig::MASKED_LM && seq < 2)
    Add(problems, source, "train.seq_len = " + std::to_string(seq) +
                              " is too short for MASKED_LM (an example is <|endoftext|> and at least one token: >= 2)");
  if (kind == ObjectiveConfig::SEQ2SEQ && seq < 4)
    Add(problems, source, "train.seq_len = " + std::to_string(seq) +
                              " is too short for SEQ2SEQ (<|endoftext|>, source, <|sep|> and target: >= 4)");
  if (kind == ObjectiveConfig::MASKED_LM) {
    token("mask_token", o.mask_token(), "masked LM replaces selected inputs by it");
    token("eot_token", o.eot_token(), "masked-LM examples start with it");
    if (o.mask_token_fraction() + o.random_token_fraction() > 1.0 + 1e-12)
      Add(problems, source,
          "objective.mask_token_fraction + objective.random_token_fraction = " +
              FormatConfigNumber(o.mask_token_fraction() + o.random_token_fraction()) +
              " exceeds 1 (they split the selected positions; the rest keep their token)");
    if (o.mask_fraction() <= 0)
      Add(problems, source, "objective.mask_fraction = 0 selects nothing to predict (BERT uses 0.15)");
    if (o.mask_token() == o.eot_token())
      Add(problems, source, "objective.mask_token and objective.eot_token are both " + std::to_string(o.eot_token()));
  }
  if (kind == ObjectiveConfig::SEQ2SEQ) {
    token("sep_token", o.sep_token(), "it ends every source");
    token("eot_token", o.eot_token(), "it starts every example");
    if (o.sep_token() == o.eot_token())
      Add(problems, source, "objective.sep_token and objective.eot_token are both " + std::to_string(o.eot_token()));
  }
}

void CheckParallel(const ParallelConfig& parallel, const std::string& source, std::string* problems) {
  if (parallel.stage_recompute_size() > 0 && parallel.stage_recompute_size() != parallel.stages()) {
    Add(problems, source,
        "parallel.stage_recompute lists " + std::to_string(parallel.stage_recompute_size()) +
            " policies for parallel.stages = " + std::to_string(parallel.stages()) + " (one per stage, or none)");
  }
  if (parallel.virtual_stages() > 1 && parallel.schedule() != ParallelConfig::INTERLEAVED_1F1B) {
    Add(problems, source,
        "parallel.virtual_stages = " + std::to_string(parallel.virtual_stages()) +
            " needs parallel.schedule = INTERLEAVED_1F1B (it is " +
            ParallelConfig::Schedule_Name(parallel.schedule()) + "); only the interleaved schedule splits a rank's layers into chunks");
  }
}

void CheckData(const DataConfig& data, const TrainConfig& train, const std::string& source, std::string* problems) {
  if (data.train().empty()) {
    Add(problems, source,
        "data.train is empty; set it to a glob of training token shards, e.g. data { train: "
        "\"data/brown/*_train_*.bin\" } or --set data.train=data/brown/*_train_*.bin");
  }
  if (data.val().empty() && train.eval_batches() > 0) {
    Add(problems, source,
        "data.val is empty but train.eval_batches = " + std::to_string(train.eval_batches()) +
            "; set data.val to a glob of validation token shards, or set train.eval_batches to 0 to skip validation");
  }
}

}  // namespace

void CheckConfigRanges(const pb::Message& message, const std::string& source, std::string* problems) {
  CheckRangesBelow(message, "", source, problems);
}

Status ValidateRunConfig(const RunConfig& config, const std::string& source) {
  std::string problems;
  CheckConfigRanges(config, source, &problems);
  CheckModel(config.model(), config.train(), source, &problems);
  CheckParallel(config.parallel(), source, &problems);
  CheckObjective(config, source, &problems);
  CheckCheckpoint(config, source, &problems);
  CheckDevice(config, source, &problems);
  CheckData(config.data(), config.train(), source, &problems);
  if (problems.empty()) return Status::OK();
  return Status::InvalidArgument(problems);
}

}  // namespace baton
