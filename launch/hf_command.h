// `baton export --format hf` and `baton import --format hf`: GPT-2 checkpoints
// as Hugging Face model directories (config.json + model.safetensors with the
// names transformers' GPT2LMHeadModel expects), and back.
#pragma once

namespace baton {
// argv[0] is "export" / "import". Return the process exit code.
int RunExportCommand(int argc, char** argv);
int RunImportCommand(int argc, char** argv);
}  // namespace baton
