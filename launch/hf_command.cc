#include "launch/hf_command.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/hf_gpt2.h"
#include "checkpoint/hf_model_dir.h"
#include "checkpoint/hf_roformer.h"
#include "launch/config_loader.h"
#include "launch/inspect_command.h"
#include "launch/run_spec.h"
#include "launch/trainer_checkpoint.h"
#include "launch/whole_checkpoint.h"

namespace baton {
namespace {

constexpr const char* kExportUsage = R"(usage: baton export --format hf PATH OUT

Writes the model of checkpoint PATH (a step directory, or a run directory: then
the checkpoint LATEST names) as a Hugging Face model directory OUT: config.json
and model.safetensors, loadable with from_pretrained(OUT) of
  model.family GPT2:      transformers.GPT2LMHeadModel
  model.family ROFORMER:  transformers.RoFormerForMaskedLM (gelu_new, zero
                          token-type embeddings; model.rope_base must be 10000)
GPT_ROPE and ROFORMER_V2 have no transformers architecture and are refused.
The padding rows of the token table are left out (vocab_size is model.vocab).
OUT must not exist or be empty.
)";

constexpr const char* kImportUsage = R"(usage: baton import --format hf HF_DIR --config FILE [--set FIELD=VALUE ...] --run-dir DIR

Starts a run from Hugging Face weights: reads HF_DIR (config.json and
model.safetensors, or a sharded model.safetensors.index.json; F32, F16 or BF16)
and writes them as the step-0 checkpoint of DIR, without optimizer state.
config.json's model_type picks the family: "gpt2" (GPT2LMHeadModel or
GPT2Model) or "roformer" (RoFormerForMaskedLM with hidden_act gelu_new or
gelu_pytorch_tanh, embedding_size = hidden_size and a zero token-type row 0).
The model fields of FILE must describe the same model (the differences are
listed if not). Then train with: baton train --config FILE --run-dir DIR --resume auto
)";

// OK for the families transformers has an architecture for.
Status CheckExportable(const ModelConfig& model, const std::string& dir) {
  const std::string what = "checkpoint " + dir + " is a " + ModelConfig::Family_Name(model.family()) + " model: ";
  switch (model.family()) {
    case ModelConfig::GPT2:
    case ModelConfig::ROFORMER: return Status::OK();
    case ModelConfig::GPT_ROPE:
      return Status::InvalidArgument(what + "transformers has no GPT-2 with rotary positions (Hugging Face export "
                                            "covers GPT2 and ROFORMER)");
    case ModelConfig::ROFORMER_V2:
      return Status::InvalidArgument(what + "transformers has no RoFormerV2 architecture (no biases, parameter-free "
                                            "RMS norm; Hugging Face export covers GPT2 and ROFORMER)");
  }
  return Status::InvalidArgument(what + "Hugging Face export covers GPT2 and ROFORMER");
}

Status Export(const std::string& path, const std::string& out) {
  BATON_ASSIGN_OR_RETURN(std::string dir, ResolveCheckpointPath(path));
  BATON_ASSIGN_OR_RETURN(CheckpointReader reader, CheckpointReader::Open(dir));
  const ModelConfig& model = reader.manifest().config().model();
  BATON_RETURN_IF_ERROR(CheckExportable(model, dir));
  const ModelSpec spec = ModelSpecFromConfig(model);
  ParamTensors params;  // the family's exporter refuses a missing, misshapen or unknown one
  BATON_RETURN_IF_ERROR(ReadWholeCheckpoint(reader, &params));
  BATON_RETURN_IF_ERROR(model.family() == ModelConfig::GPT2 ? ExportHfGpt2(out, spec, params)
                                                            : ExportHfRoformer(out, spec, params));
  std::printf("exported %s (step %ld) to %s\n", dir.c_str(), static_cast<long>(reader.step()), out.c_str());
  return Status::OK();
}

struct ImportedModel {
  ModelSpec spec;
  ParamTensors params;
};

// Reads HF_DIR with the reader its config.json's model_type names.
Result<ImportedModel> ReadHfModel(const std::string& hf_dir, int64_t vocab_multiple) {
  const std::string config_path = (std::filesystem::path(hf_dir) / "config.json").string();
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadHfTextFile(config_path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::InvalidArgument(config_path + ": expected a JSON object");
  const auto type = j.find("model_type");
  if (type == j.end() || !type->is_string()) {
    return Status::InvalidArgument(config_path + ": field model_type is " +
                                   (type == j.end() ? std::string("missing") : type->dump()) +
                                   ", expected \"gpt2\" or \"roformer\"");
  }
  if (*type == "gpt2") {
    BATON_ASSIGN_OR_RETURN(HfGpt2Checkpoint hf, ImportHfGpt2(hf_dir, vocab_multiple));
    return ImportedModel{hf.spec, std::move(hf.params)};
  }
  if (*type == "roformer") {
    BATON_ASSIGN_OR_RETURN(HfRoformerCheckpoint hf, ImportHfRoformer(hf_dir, vocab_multiple));
    return ImportedModel{hf.spec, std::move(hf.params)};
  }
  return Status::Unimplemented(config_path + ": model_type " + type->dump() +
                               " has no baton family; baton imports \"gpt2\" (GPT2) and \"roformer\" (ROFORMER)");
}

Status Import(const std::string& hf_dir, const std::string& config_path, const std::vector<std::string>& sets,
              const std::string& run_dir) {
  BATON_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(config_path, sets));
  const ModelSpec want = ModelSpecFromConfig(config.model());
  BATON_ASSIGN_OR_RETURN(ImportedModel hf, ReadHfModel(hf_dir, config.model().vocab_multiple()));
  BATON_RETURN_IF_ERROR(CompareModelSpecs(hf.spec, want, hf_dir + "/config.json").WithContext(config_path));
  const std::string ckpt_dir = config.checkpoint().dir().empty() ? run_dir + "/ckpt" : config.checkpoint().dir();
  BATON_RETURN_IF_ERROR(RequireFreshCheckpointDir(ckpt_dir, "import"));
  CheckpointManifest m;
  *m.mutable_config() = config;
  m.mutable_rng()->set_seed(config.train().seed());
  m.set_written_by("baton import (" + hf_dir + ")");
  // The reader gave exactly the model's parameters; no optimizer state.
  BATON_ASSIGN_OR_RETURN(CheckpointWriteStats s,
                         WriteWholeCheckpoint(ckpt_dir, 0, hf.params, {}, std::move(m), config.checkpoint().keep()));
  std::printf("imported %s as %s (%.1f MB); train with: baton train --config %s --run-dir %s --resume auto\n",
              hf_dir.c_str(), s.step_dir.c_str(), static_cast<double>(s.total_bytes) / 1e6, config_path.c_str(),
              run_dir.c_str());
  return Status::OK();
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  return false;
}

}  // namespace

int RunExportCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) return std::fputs(kExportUsage, stdout), 0;
  std::vector<std::string> positional;
  std::string format;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
    else positional.push_back(argv[i]);
  }
  if (format != "hf" || positional.size() != 2) {
    std::fprintf(stderr, "baton export: %s\n%s",
                 format != "hf" ? "--format hf is the one format there is" : "need PATH and OUT", kExportUsage);
    return 2;
  }
  Status s = Export(positional[0], positional[1]);
  if (!s.ok()) std::fprintf(stderr, "baton export: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}

int RunImportCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) return std::fputs(kImportUsage, stdout), 0;
  std::string format, config, run_dir, hf_dir;
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--format" && has_value) format = argv[++i];
    else if (a == "--config" && has_value) config = argv[++i];
    else if (a == "--run-dir" && has_value) run_dir = argv[++i];
    else if (a == "--set" && has_value) sets.push_back(argv[++i]);
    else if (hf_dir.empty() && a.rfind("--", 0) != 0) hf_dir = a;
    else {
      std::fprintf(stderr, "baton import: unexpected argument '%s'\n%s", a.c_str(), kImportUsage);
      return 2;
    }
  }
  if (format != "hf" || hf_dir.empty() || config.empty() || run_dir.empty()) {
    std::fprintf(stderr, "baton import: --format hf, HF_DIR, --config and --run-dir are required\n%s", kImportUsage);
    return 2;
  }
  Status s = Import(hf_dir, config, sets, run_dir);
  if (!s.ok()) std::fprintf(stderr, "baton import: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}

}  // namespace baton
