// `baton export --format hf` and `baton import --format hf`: GPT2 and ROFORMER
// checkpoints as Hugging Face model directories (config.json + model.safetensors
// with the names transformers' GPT2LMHeadModel / RoFormerForMaskedLM expect),
// and back; the family is picked by model.family on export and by config.json's
// model_type on import.
#pragma once

namespace baton {
// argv[0] is "export" / "import". Return the process exit code.
int RunExportCommand(int argc, char** argv);
int RunImportCommand(int argc, char** argv);
}  // namespace baton
