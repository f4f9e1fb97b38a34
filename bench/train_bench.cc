// baton_bench: trains a config for a number of steps on synthetic tokens and
// reports throughput, MFU, memory and where the time goes, as a table and as
// JSON; no data files are read. One process (one CPU or one GPU), or under
// mpirun one rank per GPU with the config's parallel.stages x replicas: then
// it also reports, per rank, compute, bubble and exposed communication time
// (bench/stage_breakdown.h), and MFU per GPU.
//
//   baton_bench --config configs/gpt2-124m-gpu.pbtxt [--set field=value ...]
//               [--steps 20] [--warmup 5] [--profile] [--json out.json]
//
// MFU (model FLOPs utilisation) = achieved model FLOP/s / peak FLOP/s, with
//   model FLOPs per token = 6 N + 12 L T d
// where N counts the parameters of every matrix product of forward and
// backward (all parameters except the position table; the tied token table
// counts once, as the LM head's matrix), L = layers, T = sequence length,
// d = hidden size; the second term is attention's QK^T and PV over the full
// T x T (not halved for causality), as in PaLM (Chowdhery et al. 2022, App. B)
// and nanoGPT. Recomputation is not counted (that would be HFU). Peak: 989
// TFLOP/s dense bf16 for H100/H200 SXM (--peak-tflops to change).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launch/compute_device.h"
#include "bench/stage_breakdown.h"
#include "launch/config_loader.h"
#include "launch/rank_groups.h"
#include "launch/run_spec.h"
#include "pipeline/pipeline_trainer.h"
#include "pipeline/schedule.h"
#include "pipeline/schedule_verifier.h"
#include "runtime/log.h"
#include "runtime/mpi_transport.h"
#include "runtime/mpi_world.h"
#include "runtime/op_profile.h"
#include "runtime/rng.h"

namespace baton {
namespace {

struct Args {
  std::string config, json;
  std::vector<std::string> sets;
  int steps = 20, warmup = 5;
  bool profile = false;
  double peak_tflops = 989;
};

void Usage() {
  std::fprintf(stderr,
               "usage: baton_bench --config FILE [--set field=value ...] [--steps N] [--warmup N] [--profile]\n"
               "                   [--peak-tflops P] [--json OUT]\n");
  std::exit(2);
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (f == "--config") a.config = value();
    else if (f == "--set") a.sets.push_back(value());
    else if (f == "--steps") a.steps = std::atoi(value().c_str());
    else if (f == "--warmup") a.warmup = std::atoi(value().c_str());
    else if (f == "--json") a.json = value();
    else if (f == "--peak-tflops") a.peak_tflops = std::atof(value().c_str());
    else if (f == "--profile") a.profile = true;
    else Usage();
  }
  if (a.config.empty() || a.steps < 1 || a.warmup < 0) Usage();
  return a;
}

std::vector<MicroBatch> SyntheticBatches(const RunConfig& config, const ModelSpec& spec, RandomStream* rng) {
  std::vector<MicroBatch> out;
  const int64_t b = config.train().microbatch_size(), t = config.train().seq_len();
  for (int i = 0; i < config.train().microbatches(); ++i) {
    std::vector<int32_t> ids(static_cast<size_t>(b * (t + 1)));
    for (int32_t& id : ids) id = static_cast<int32_t>(rng->Below(static_cast<uint64_t>(spec.vocab)));
    MicroBatch mb;
    mb.tokens = Tensor::Empty({b, t}, DType::kI32);
    mb.targets = Tensor::Empty({b, t}, DType::kI32);
    for (int64_t r = 0; r < b; ++r)
      for (int64_t j = 0; j < t; ++j) {
        mb.tokens.data<int32_t>()[r * t + j] = ids[static_cast<size_t>(r * (t + 1) + j)];
        mb.targets.data<int32_t>()[r * t + j] = ids[static_cast<size_t>(r * (t + 1) + j + 1)];
      }
    out.push_back(std::move(mb));
  }
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Status Run(const Args& args, MpiWorld& world) {
  BATON_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(args.config, args.sets));
  const ModelSpec spec = ModelSpecFromConfig(config.model());
  const TrainConfig& train = config.train();
  const ParallelConfig& parallel = config.parallel();
  if (world.size() != parallel.stages() * parallel.replicas())
    return Status::InvalidArgument("parallel.stages x parallel.replicas = " +
                                   std::to_string(parallel.stages() * parallel.replicas()) + " but " +
                                   std::to_string(world.size()) + " ranks (mpirun -np)");
  BATON_ASSIGN_OR_RETURN(const Device device, ComputeDevice(train, world));
  BATON_ASSIGN_OR_RETURN(StageLayout layout, LayoutFromConfig(config, spec, args.config));
  BATON_ASSIGN_OR_RETURN(ScheduleKind kind, ParseScheduleKind(ParallelConfig::Schedule_Name(parallel.schedule())));
  BATON_ASSIGN_OR_RETURN(PipelineSchedule schedule, BuildSchedule(kind, parallel.stages(), train.microbatches(),
                                                                  parallel.virtual_stages()));
  BATON_ASSIGN_OR_RETURN(ScheduleReport report, VerifySchedule(schedule));
  ops::SetBackendThreads(train.threads());
  BATON_ASSIGN_OR_RETURN(RankGroups groups, ConnectRanks(device, parallel.stages(), parallel.comm_timeout_seconds()));
  if (!groups.pipe->matches_by_tag()) BATON_RETURN_IF_ERROR(CheckStreamOrderedExchange(schedule));
  const int stage = groups.pipe->rank(), replica = groups.replicas->rank();
  const RecomputePolicy recompute = RecomputeFromConfig(parallel, stage);
  PipelineTrainer trainer(spec, train.seed(), layout, schedule, AdafactorOptionsFromConfig(config.optim()),
                          TrainerOptions{LrScheduleFromConfig(config.optim(), train.steps()),
                                         config.optim().clip_grad_norm(), recompute, device},
                          groups.pipe.get(), groups.replicas.get());

  RandomStream rng(train.seed(), 0xbe4c + static_cast<uint64_t>(replica));  // each replica its own tokens
  std::vector<double> ms;
  StepMetrics last;
  int64_t allocations_after_warmup = 0;
  for (int s = 1; s <= args.warmup + args.steps; ++s) {
    BATON_ASSIGN_OR_RETURN(last, trainer.Step(s, SyntheticBatches(config, spec, &rng)));
    // A step takes as long as its slowest rank.
    BATON_ASSIGN_OR_RETURN(std::vector<double> seconds, AllGatherValues(groups.world.get(), {last.seconds}));
    const double slowest = *std::max_element(seconds.begin(), seconds.end());
    if (s > args.warmup) ms.push_back(slowest * 1e3);
    if (s == args.warmup) allocations_after_warmup = last.memory.device_allocations;
    LogInfo("step %d: loss %.4f, %.1f ms", s, last.loss, slowest * 1e3);
  }
  // cudaMalloc calls during the timed steps: 0 once the caching allocator has settled.
  const int64_t timed_device_allocations = last.memory.device_allocations - allocations_after_warmup;
  std::vector<OpProfile::Entry> profile;
  nlohmann::json stages = nlohmann::json::array();
  const bool pipelined = world.size() > 1;
  if (args.profile || pipelined) {  // more steps, timed (not part of the throughput above)
    // Several ranks: phases only (a few events per micro-batch), over a few steps.
    const int profiled = pipelined ? 3 : 1;
    OpProfile::Enable(true, /*phases_only=*/pipelined && !args.profile);
    for (int s = 1; s <= profiled; ++s) {
      BATON_ASSIGN_OR_RETURN(last, trainer.Step(args.warmup + args.steps + s, SyntheticBatches(config, spec, &rng)));
    }
    profile = OpProfile::Collect();
    OpProfile::Enable(false);
    if (pipelined) {
      BATON_ASSIGN_OR_RETURN(stages, StageBreakdown(profile, profiled, schedule, stage, replica, groups.world.get()));
    }
  }
  BATON_ASSIGN_OR_RETURN(std::vector<double> peaks,
                         AllGatherValues(groups.world.get(), {static_cast<double>(last.memory.peak_bytes)}));
  if (world.rank() != 0) return Status::OK();

  const int64_t tokens = last.tokens;
  const double median_ms = Median(ms);
  const double mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  const double tokens_per_s = static_cast<double>(tokens) / (median_ms / 1e3);
  const int64_t matmul_params = spec.ParameterCount() - (spec.positions == PositionKind::kLearned ? spec.max_positions * spec.hidden : 0);
  const double flops_per_token = 6.0 * static_cast<double>(matmul_params) +
                                 12.0 * static_cast<double>(spec.layers * train.seq_len() * spec.hidden);
  const double mfu = flops_per_token * tokens_per_s / (args.peak_tflops * 1e12 * world.size());  // per GPU

  nlohmann::json j;
  j["device"] = DeviceDescription(device);
  j["config"] = args.config;
  j["sets"] = args.sets;
  j["model"] = {{"layers", spec.layers}, {"hidden", spec.hidden}, {"heads", spec.heads}, {"ffn", spec.ffn},
                {"vocab", spec.vocab}, {"padded_vocab", spec.padded_vocab}, {"parameters", spec.ParameterCount()}};
  j["batch"] = {{"microbatch_size", train.microbatch_size()}, {"microbatches", train.microbatches()},
                {"seq_len", train.seq_len()}, {"tokens_per_step", tokens}};
  j["recompute"] = RecomputePolicyName(recompute);
  j["parallel"] = {{"gpus", world.size()}, {"stages", parallel.stages()}, {"replicas", parallel.replicas()},
                   {"virtual_stages", parallel.virtual_stages()}, {"schedule", ScheduleKindName(kind)},
                   {"layout", layout.Describe(spec)}, {"simulated_bubble_fraction", report.bubble_fraction}};
  j["per_rank"] = stages;
  j["peak_bytes_per_rank"] = peaks;
  j["steps"] = args.steps;
  j["warmup"] = args.warmup;
  j["ms_per_step"] = ms;
  j["ms_per_step_median"] = median_ms;
  j["ms_per_step_mean"] = mean_ms;
  j["tokens_per_s"] = tokens_per_s;
  j["flops_per_token"] = flops_per_token;
  j["mfu"] = mfu;
  j["mfu_formula"] = "(6 N + 12 L T d) tokens/s / peak; N = parameters except the position table";
  j["peak_tflops"] = args.peak_tflops;
  j["last_loss"] = last.loss;
  j["peak_bytes"] = last.memory.peak_bytes;
  j["reserved_peak_bytes"] = last.memory.reserved_peak_bytes;
  j["device_allocations_in_timed_steps"] = args.warmup > 0 ? timed_device_allocations : -1;
  nlohmann::json by_category;
  for (size_t c = 0; c < MemoryStats::kCategories; ++c)
    by_category[MemoryCategoryName(static_cast<MemoryCategory>(c))] = last.memory.category_peak[c];
  j["peak_bytes_by_category"] = by_category;
  nlohmann::json ops = nlohmann::json::array(), phases = nlohmann::json::array();
  for (const OpProfile::Entry& e : profile)
    (e.name.rfind("phase: ", 0) == 0 ? phases : ops).push_back({{"name", e.name}, {"calls", e.calls}, {"ms", e.ms}});
  j["phases"] = phases;
  j["ops"] = ops;

  std::printf("\n%-34s %s\n", "device", j["device"].get<std::string>().c_str());
  std::printf("%-34s %ld x %d x %d tokens, recompute %s\n", "batch", static_cast<long>(train.microbatch_size()),
              train.seq_len(), train.microbatches(), RecomputePolicyName(recompute));
  std::printf("%-34s %.2f ms (mean %.2f)\n", "step time (median)", median_ms, mean_ms);
  std::printf("%-34s %.0f\n", "tokens/s", tokens_per_s);
  std::printf("%-34s %.1f%%\n", "MFU (per GPU)", 100 * mfu);
  if (pipelined) {
    std::printf("%-34s %d stage(s) x %d replica(s), %s, %d micro-batches; simulated bubble %.1f%%\n", "parallel",
                parallel.stages(), parallel.replicas(), ScheduleKindTitle(kind), train.microbatches(),
                100 * report.bubble_fraction);
    PrintStageBreakdown(stages);
  }
  std::printf("%-34s %s\n", "memory", DescribeMemory(last.memory).c_str());
  if (!profile.empty()) {
    std::printf("\n%-40s %8s %10s %7s\n", "op / phase (profiled step)", "calls", "ms", "share");
    double total = 0;
    for (const auto& e : j["phases"]) total += e["ms"].get<double>();
    for (const char* kind : {"phases", "ops"})
      for (const auto& e : j[kind])
        std::printf("%-40s %8ld %10.2f %6.1f%%\n", e["name"].get<std::string>().c_str(), e["calls"].get<long>(),
                    e["ms"].get<double>(), total > 0 ? 100 * e["ms"].get<double>() / total : 0.0);
  }
  if (!args.json.empty()) {
    std::ofstream out(args.json);
    out << j.dump(2) << "\n";
    if (!out) return Status::IOError("cannot write " + args.json);
  }
  return Status::OK();
}

}  // namespace
}  // namespace baton

int main(int argc, char** argv) {
  const baton::Args args = baton::ParseArgs(argc, argv);
  baton::MpiWorld& world = baton::MpiWorld::Init(&argc, &argv);
  const baton::Status st = Run(args, world);
  if (!st.ok()) world.Abort(st);
  world.Finalize();
  return 0;
}
