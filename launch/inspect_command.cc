#include "launch/inspect_command.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/checkpoint_reader.h"
#include "launch/run_spec.h"

namespace baton {
namespace {

constexpr const char* kUsage = R"(usage: baton inspect PATH

Prints what a checkpoint holds (step, model, the topology it was written with,
the data cursor, every tensor with its shape and where it is stored) and
verifies every checksum. PATH is a step directory (RUN_DIR/ckpt/step_00001000),
a checkpoint directory, or a run directory (then the checkpoint LATEST names).
Exit code 0 when everything verifies, 1 when anything is damaged or missing.
)";

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::string> LatestIn(const std::string& ckpt_dir) {
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> latest, ReadLatest(ckpt_dir));
  if (!latest) return Status::NotFound(ckpt_dir + " has no LATEST");
  return ckpt_dir + "/" + StepDirName(*latest);
}

std::string ShapeText(const TensorEntry& e) {
  std::string s = "[";
  for (int i = 0; i < e.shape_size(); ++i) s += (i ? ", " : "") + std::to_string(e.shape(i));
  return s + "]";
}

}  // namespace

Result<std::string> ResolveCheckpointPath(const std::string& path) {
  if (IsFile(path + "/" + kLatestFileName)) return LatestIn(path);
  if (IsFile(path + "/ckpt/" + kLatestFileName)) return LatestIn(path + "/ckpt");
  return path;
}

int RunInspectCommand(int argc, char** argv) {
  if (argc != 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc == 2 ? stdout : stderr);
    return argc == 2 ? 0 : 2;
  }
  Result<std::string> dir = ResolveCheckpointPath(argv[1]);
  Result<CheckpointReader> reader = dir.ok() ? CheckpointReader::Open(*dir) : Result<CheckpointReader>(dir.status());
  if (!reader.ok()) {
    std::fprintf(stderr, "baton inspect: %s\n", reader.status().ToString().c_str());
    return 1;
  }
  const CheckpointManifest& m = reader->manifest();
  const ModelSpec spec = ModelSpecFromConfig(m.config().model());
  char when[64] = "?";
  const std::time_t t = static_cast<std::time_t>(m.unix_time());
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::printf("checkpoint %s\n", reader->dir().c_str());
  std::printf("  format %u, written by %s at %s\n", m.format_version(), m.written_by().c_str(), when);
  std::printf("  step %ld, %ld tokens seen; data cursor epoch %lu position %lu; seed %lu\n", static_cast<long>(m.step()),
              static_cast<long>(m.tokens_seen()), static_cast<unsigned long>(m.data_cursor().epoch()),
              static_cast<unsigned long>(m.data_cursor().position()), static_cast<unsigned long>(m.rng().seed()));
  std::printf("  lr schedule %s, lr %g, warm-up %ld, %ld steps; last rate %g\n", m.lr_schedule().kind().c_str(),
              m.lr_schedule().lr(), static_cast<long>(m.lr_schedule().warmup_steps()),
              static_cast<long>(m.lr_schedule().total_steps()), m.lr_schedule().last_rate());
  std::printf("  model %s: %ld layers, hidden %ld, %ld heads, ffn %ld, vocab %ld (%ld rows), %ld positions\n",
              spec.family.c_str(), static_cast<long>(spec.layers), static_cast<long>(spec.hidden),
              static_cast<long>(spec.heads), static_cast<long>(spec.ffn), static_cast<long>(spec.vocab),
              static_cast<long>(spec.padded_vocab), static_cast<long>(spec.max_positions));
  const Topology& topo = m.topology();
  std::printf("  written by %d stage(s) x %d replica(s), layout %s, %s; %d shard file(s); optimizer state: %s\n",
              topo.stages(), topo.replicas(), topo.layout().c_str(), topo.schedule().c_str(), topo.shard_files_size(),
              m.has_optimizer_state() ? "yes" : "no");
  std::printf("  %-44s %-5s %-18s %-22s %s\n", "tensor", "dtype", "shape", "file", "checksum");
  int64_t bytes = 0;
  int bad = 0;
  Status verified = reader->VerifyAll([&](const TensorEntry& e, const Status& s) {
    for (const TensorSlice& slice : e.slices()) bytes += static_cast<int64_t>(slice.payload_bytes());
    std::string files;
    for (const TensorSlice& slice : e.slices()) files += (files.empty() ? "" : ",") + slice.file();
    std::printf("  %-44s %-5s %-18s %-22s %s\n", e.name().c_str(), e.dtype().c_str(), ShapeText(e).c_str(),
                files.c_str(), s.ok() ? "ok" : "DAMAGED");
    if (!s.ok()) {
      ++bad;
      std::printf("      %s\n", s.ToString().c_str());
    }
  });
  if (!verified.ok()) {
    std::printf("%d of %d tensors damaged\n", bad, m.tensors_size());
    return 1;
  }
  std::printf("all %d tensors verified (%.1f MB, CRC32C)\n", m.tensors_size(), static_cast<double>(bytes) / 1e6);
  return 0;
}

}  // namespace baton
