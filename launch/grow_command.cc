#include "launch/grow_command.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/model_growth.h"
#include "runtime/atomic_file.h"
#include "launch/config_effective.h"
#include "launch/config_loader.h"
#include "launch/inspect_command.h"
#include "launch/run_spec.h"
#include "launch/trainer_checkpoint.h"
#include "launch/whole_checkpoint.h"
#include "layers/loss_head.h"
#include "layers/model.h"
#include "runtime/rng.h"

namespace baton {
namespace {

constexpr const char* kUsage = R"(usage: baton grow --from CKPT --config BIG.pbtxt --out RUN_DIR [--set FIELD=VALUE ...]
                  [--method tile|seed] [--noise X] [--depth interleaved|appended] [--seed N]

Grows a trained model into a larger one that computes the same function, and
writes it as a committed checkpoint of RUN_DIR (RUN_DIR/ckpt, or the config's
checkpoint.dir) at the small model's step, with its AdaFactor state mapped,
its data position and its seed. Continue with
  baton train --config BIG.pbtxt --run-dir RUN_DIR --resume auto
under any pipeline layout.

  --from CKPT   a step directory, or a run or checkpoint directory (its LATEST)
  --config      the big model's run configuration (model.* says how big; the
                family, vocabulary, positions and norm epsilon must stay)
  --method      tile (default; growth.method): hidden x k with heads x k (head
                size kept), FFN x k_f, any integers; exact for every family.
                seed: Su's method, hidden x k with the head count kept (head
                size x k); exact with learned positions (GPT2), approximate
                with RoPE (the check below measures how far).
                Depth (more blocks, pre-LN only) adds blocks that add zero.
  --noise X     symmetry breaking (growth.noise, default 0.05): independent
                random off-diagonal blocks of scale X x RMS(W), paid back by the
                diagonal, so the function stays exact; 0 = none, and then the
                copies of a hidden unit never diverge
  --depth       where new blocks go: interleaved (default) or appended
  --seed N      noise and new blocks' weights (default: train.seed)
  --allow-approximate
                write the model even when the function check below finds it
                differs from the small one by more than 1e-4 (relative)

The grown model's logits are compared with the small model's on random tokens
and the difference printed; tiling is exact to float rounding. Very large
noise amplifies the copies' rounding differences; a grown model that misses
by more than 1e-4 is refused.
)";

struct GrowArgs {
  std::string from, config, out;
  std::vector<std::string> sets;
  bool allow_approximate = false;
};

// Above this, the grown model is not the small one (float rounding stays far below).
constexpr double kExactTolerance = 1e-4;

// A micro-batch of random tokens with the masks `config`'s objective uses
// (padding and a source prefix where it has them).
MicroBatch CheckBatch(const RunConfig& config, const ModelSpec& spec) {
  const int64_t batch = 2, seq = std::min<int64_t>(32, spec.max_positions);
  RandomStream rng(20261123, 1);
  MicroBatch mb;
  mb.tokens = Tensor::Empty({batch, seq}, DType::kI32);
  mb.targets = Tensor::Empty({batch, seq}, DType::kI32);
  for (int64_t i = 0; i < batch * seq; ++i) {
    mb.tokens.data<int32_t>()[i] = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(spec.vocab)));
    mb.targets.data<int32_t>()[i] = 0;
  }
  const ObjectiveConfig::Kind kind = EffectiveObjective(config);
  if (kind != ObjectiveConfig::CAUSAL_LM) {
    const int32_t s = static_cast<int32_t>(seq);
    mb.mask.lengths = Tensor::FromVector<int32_t>({batch}, {s, std::max(1, s - 5)});
    mb.mask.prefix_lengths = kind == ObjectiveConfig::MASKED_LM ? Tensor::FromVector<int32_t>({batch}, {s, s})
                                                                : Tensor::FromVector<int32_t>({batch}, {s / 2, 3});
  }
  return mb;
}

// fp32 logits of the model `params` describe, at the real rows, over the real vocabulary.
std::vector<double> Logits(const ModelSpec& spec, const NamedTensorMap& params, const MicroBatch& mb) {
  Model m = Model::Build(spec, 1);
  for (Param* p : m.params()) {
    p->value.CopyFrom(params.at(p->name));
    p->RefreshCompute();
  }
  Tensor x;
  for (size_t i = 0; i + 1 < m.layers().size(); ++i) x = m.layers()[i]->Forward(mb, x, nullptr);
  const std::vector<double> all = static_cast<LossHead*>(m.layers().back().get())->Logits(x).ToDoubles();
  std::vector<double> out;
  for (int64_t b = 0; b < mb.batch(); ++b) {
    const int64_t real = mb.mask.lengths.defined() ? mb.mask.lengths.data<int32_t>()[b] : mb.seq_len();
    for (int64_t t = 0; t < real; ++t) {
      const auto row = all.begin() + (b * mb.seq_len() + t) * spec.padded_vocab;
      out.insert(out.end(), row, row + spec.vocab);
    }
  }
  return out;
}

Status Grow(const GrowArgs& a, RunConfig big_config, GrowthOptions options, bool seed_given) {
  BATON_ASSIGN_OR_RETURN(const std::string dir, ResolveCheckpointPath(a.from));
  BATON_ASSIGN_OR_RETURN(CheckpointReader reader, CheckpointReader::Open(dir));
  const CheckpointManifest& manifest = reader.manifest();
  const ModelSpec small = ModelSpecFromConfig(manifest.config().model());
  const ModelSpec big = ModelSpecFromConfig(big_config.model());
  BATON_RETURN_IF_ERROR(CheckGrowth(small, big, options.method).WithContext(dir + " -> " + a.config));
  if (!seed_given) options.seed = big_config.train().seed();
  // The data order is the small run's: the big run continues it, so its config says so.
  big_config.mutable_train()->set_seed(manifest.rng().seed());
  for (const char* file : {"metrics.jsonl", "config.pbtxt", "grown.pbtxt"})
    if (std::filesystem::exists(std::filesystem::path(a.out) / file))
      return Status::InvalidArgument(a.out + " already holds a run (" + file + "); grow into a new --out directory");

  const std::string ckpt_dir = big_config.checkpoint().dir().empty() ? a.out + "/ckpt" : big_config.checkpoint().dir();
  BATON_RETURN_IF_ERROR(RequireFreshCheckpointDir(ckpt_dir, "grow"));

  NamedTensorMap params, state;
  BATON_RETURN_IF_ERROR(ReadWholeCheckpoint(reader, &params, &state));
  const AdafactorOptions optim = AdafactorOptionsFromConfig(big_config.optim());
  BATON_ASSIGN_OR_RETURN(GrownModel grown, GrowModel(small, big, params, state, optim, options));
  for (const std::string& note : grown.notes) std::printf("grow: %s\n", note.c_str());
  if (!optim.scale_parameter)
    std::printf("grow: warning: optim.scale_parameter = false: a tiled matrix's blocks then each take the full "
                "step, so the function moves up to k times faster than the small model's did; keep relative steps "
                "on for a continuous learning rate\n");

  // The function check: the same random tokens through both models, in fp32.
  const MicroBatch mb = CheckBatch(big_config, big);
  const std::vector<double> want = Logits(small, params, mb), got = Logits(big, grown.params, mb);
  double worst = 0, largest = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - want[i]) / std::max(1.0, std::fabs(want[i])));
    largest = std::max(largest, std::fabs(want[i]));
  }
  std::printf("grow: function check on %zu logits (largest |logit| %.3g): max |big - small| / max(1, |small|) = %.3g%s\n",
              want.size(), largest, worst, worst <= 1e-5 ? " (exact to float rounding)" : " (APPROXIMATE)");
  // Seed's method with rotary positions is approximate by construction; anything else
  // that misses is not what the user asked for (e.g. noise so large that the copies'
  // rounding differences are amplified, or RoFormerV2 with a large norm_eps).
  const bool expected_approximate = options.method == GrowthMethod::kSeed && big.positions == PositionKind::kRope;
  if (worst > kExactTolerance && !expected_approximate && !a.allow_approximate) {
    const bool v2_epsilon = small.head == HeadKind::kTiedOnly && big.hidden > small.hidden && small.norm_eps > 1e-9;
    return Status::InvalidArgument(
        "the grown model's logits differ from the small model's by " + std::to_string(worst) +
        " (relative), more than float rounding; nothing was written. " +
        (v2_epsilon ? std::string("RoFormerV2's token table is divided by the width factor, so its embedding norm's "
                                  "epsilon (model.norm_eps = ") + std::to_string(small.norm_eps) +
                          ") acts k^2 times larger: exact only for a tiny epsilon such as 1e-12. "
                    : std::string()) +
        "Lower --noise (large noise amplifies rounding differences between the copies), or pass "
        "--allow-approximate to write it anyway");
  }

  CheckpointManifest m = manifest;  // the small run's data position, seed, tokens seen and schedule state
  *m.mutable_config() = big_config;
  // The schedule the big run will follow (the small run's last rate stays recorded).
  const OptimConfig& o = big_config.optim();
  LrScheduleState* lr = m.mutable_lr_schedule();
  lr->set_kind(OptimConfig::LrSchedule_Name(o.lr_schedule()));
  lr->set_lr(o.lr());
  lr->set_warmup_steps(o.warmup_steps());
  lr->set_min_lr_ratio(o.min_lr_ratio());
  lr->set_total_steps(big_config.train().steps());
  char what[160];
  std::snprintf(what, sizeof(what), " (max relative logit difference %.3g)", worst);
  m.set_written_by("baton grow from " + dir + what);
  BATON_ASSIGN_OR_RETURN(CheckpointWriteStats s, WriteWholeCheckpoint(ckpt_dir, reader.step(), grown.params,
                                                                      grown.adafactor, std::move(m),
                                                                      big_config.checkpoint().keep()));
  std::printf("grow: %s (step %ld, %.2fM parameters) -> %s (%.2fM parameters, %.1f MB)\n", dir.c_str(),
              static_cast<long>(reader.step()), static_cast<double>(small.ParameterCount()) / 1e6, s.step_dir.c_str(),
              static_cast<double>(big.ParameterCount()) / 1e6, static_cast<double>(s.total_bytes) / 1e6);
  // The big model's whole configuration (the --set overrides applied), to train it with.
  const std::string grown_config = a.out + "/grown.pbtxt";
  BATON_RETURN_IF_ERROR(WriteFileAtomically(grown_config, EffectiveConfigText(big_config)));
  std::printf("grow: continue with: baton train --config %s --run-dir %s --resume auto\n", grown_config.c_str(),
              a.out.c_str());
  return Status::OK();
}

}  // namespace

int RunGrowCommand(int argc, char** argv) {
  GrowArgs a;
  GrowthOptions options;
  bool seed_given = false;
  std::string method, depth, noise;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::fputs(kUsage, stdout), 0;
    if (arg == "--allow-approximate") {
      a.allow_approximate = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "baton grow: %s needs a value\n%s", arg.c_str(), kUsage);
      return 2;
    }
    const std::string v = argv[++i];
    if (arg == "--from") a.from = v;
    else if (arg == "--config") a.config = v;
    else if (arg == "--out") a.out = v;
    else if (arg == "--set") a.sets.push_back(v);
    else if (arg == "--method") method = v;
    else if (arg == "--noise") noise = v;
    else if (arg == "--depth") depth = v;
    else if (arg == "--seed") {
      options.seed = std::strtoull(v.c_str(), nullptr, 10);
      seed_given = true;
    } else {
      std::fprintf(stderr, "baton grow: unexpected argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (a.from.empty() || a.config.empty() || a.out.empty()) {
    std::fprintf(stderr, "baton grow: --from, --config and --out are required\n%s", kUsage);
    return 2;
  }
  // The command-line choices are config overrides, so that they are validated and recorded.
  if (!method.empty()) a.sets.push_back("growth.method=" + std::string(method == "seed" ? "SEED" : method == "tile" ? "TILE" : method));
  if (!noise.empty()) a.sets.push_back("growth.noise=" + noise);
  if (!depth.empty())
    a.sets.push_back("growth.depth=" + std::string(depth == "appended" ? "APPENDED" : depth == "interleaved" ? "INTERLEAVED" : depth));
  Result<RunConfig> config = LoadRunConfig(a.config, a.sets);
  if (!config.ok()) {
    std::fprintf(stderr, "baton grow: %s\n", config.status().ToString().c_str());
    return 1;
  }
  options.noise = config->growth().noise();
  options.method = config->growth().method() == GrowthConfig::SEED ? GrowthMethod::kSeed : GrowthMethod::kTile;
  options.depth = config->growth().depth() == GrowthConfig::APPENDED ? DepthPlacement::kAppended
                                                                      : DepthPlacement::kInterleaved;
  Status s = Grow(a, *config, options, seed_given);
  if (!s.ok()) std::fprintf(stderr, "baton grow: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}

}  // namespace baton
