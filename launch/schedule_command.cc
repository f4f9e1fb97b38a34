#include "launch/schedule_command.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "pipeline/schedule.h"
#include "pipeline/schedule_timeline.h"
#include "pipeline/schedule_verifier.h"

namespace baton {
namespace {

constexpr const char* kUsage = R"(usage: baton schedule --stages P --microbatches M [--kind KIND] [--virtual V]
                      [--memory-budget N] [--costs F,B,W] [--actions]

Builds the pipeline schedule, checks it with the verifier (deadlock, unmatched
communication, activation memory) and prints each rank's timeline, the bubble
fraction and the peak number of micro-batches whose activations each rank holds.

  --stages P          pipeline stages (ranks), >= 1
  --microbatches M    micro-batches per step, >= 1
  --kind KIND         gpipe | 1f1b | interleaved | zb-h1 (default 1f1b; the config
                      names GPIPE, ONE_F_ONE_B, INTERLEAVED_1F1B, ZERO_BUBBLE_H1 work too)
  --virtual V         model chunks per rank, interleaved only (default 1); with V > 1,
                      M must be a multiple of P
  --memory-budget N   reject the schedule if a rank holds more than N micro-batches
                      (x chunks) of activations; 0 = unlimited (default)
  --costs F,B,W       time of a forward, an input-gradient backward and a weight-gradient
                      backward (default 1,1,1; a fused backward costs B+W)
  --actions           also print every rank's action list
  --help              this text
)";

struct Args {
  int stages = 0, microbatches = 0, virtual_stages = 1, memory_budget = 0;
  std::string kind = "1f1b";
  ScheduleCosts costs;
  bool actions = false;
};

bool ParseInt(const std::string& text, int* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < INT_MIN || v > INT_MAX) return false;
  *out = static_cast<int>(v);
  return true;
}

bool ParseCosts(const std::string& text, ScheduleCosts* costs) {
  double v[3];
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t comma = text.find(',', start);
    if ((i < 2) != (comma != std::string::npos)) return false;
    const std::string part = text.substr(start, i < 2 ? comma - start : std::string::npos);
    if (part.empty()) return false;
    char* end = nullptr;
    v[i] = std::strtod(part.c_str(), &end);
    if (*end != '\0' || !(v[i] >= 0) || v[i] > 1e9) return false;
    start = comma + 1;
  }
  if (v[0] + v[1] + v[2] <= 0) return false;
  *costs = ScheduleCosts{v[0], v[1], v[2]};
  return true;
}

// Returns -1 to continue, otherwise the exit code.
int ParseArgs(int argc, char** argv, Args* args, std::ostream& out, std::ostream& err) {
  bool have_stages = false, have_microbatches = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    if (a == "--actions") {
      args->actions = true;
      continue;
    }
    const size_t eq = a.find('=');
    const bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    const bool known = a == "--stages" || a == "--microbatches" || a == "--kind" || a == "--virtual" ||
                       a == "--memory-budget" || a == "--costs";
    if (!known) {
      err << "baton schedule: unknown argument '" << argv[i] << "'\n" << kUsage;
      return 2;
    }
    if (!inline_value) {
      if (i + 1 >= argc) {
        err << "baton schedule: " << a << " needs a value\n" << kUsage;
        return 2;
      }
      v = argv[++i];
    }
    auto bad = [&](const char* expected) {
      err << "baton schedule: " << a << " must be " << expected << ", got '" << v << "'\n";
      return 2;
    };
    if (a == "--kind") {
      Result<ScheduleKind> kind = ParseScheduleKind(v);
      if (!kind.ok()) {
        err << "baton schedule: --kind: " << kind.status().message() << "\n";
        return 2;
      }
      args->kind = v;
    } else if (a == "--costs") {
      if (!ParseCosts(v, &args->costs)) return bad("three non-negative numbers F,B,W, not all zero (e.g. 1,1,1)");
    } else {
      int n = 0;
      if (!ParseInt(v, &n)) return bad("an integer");
      if (a == "--stages") {
        if (n < 1) return bad("an integer >= 1");
        args->stages = n;
        have_stages = true;
      } else if (a == "--microbatches") {
        if (n < 1) return bad("an integer >= 1");
        args->microbatches = n;
        have_microbatches = true;
      } else if (a == "--virtual") {
        if (n < 1) return bad("an integer >= 1");
        args->virtual_stages = n;
      } else if (a == "--memory-budget") {
        if (n < 0) return bad("an integer >= 0 (0 = unlimited)");
        args->memory_budget = n;
      }
    }
  }
  if (!have_stages || !have_microbatches) {
    err << "baton schedule: --stages and --microbatches are required\n" << kUsage;
    return 2;
  }
  // Keep the picture and the simulation to a sensible size.
  if (static_cast<long long>(args->stages) * args->microbatches * args->virtual_stages > 1000000) {
    err << "baton schedule: stages x microbatches x virtual stages must be at most 1000000\n";
    return 2;
  }
  return -1;
}

std::string Percent(double fraction) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << 100.0 * fraction << "%";
  return os.str();
}

std::string Number(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// The textbook bubble and where it comes from, for the comparison line.
std::string TextbookBubble(const PipelineSchedule& s, const ScheduleCosts& c) {
  const long long p = s.stages, m = s.microbatches, v = s.virtual_stages;
  std::ostringstream os;
  if (s.kind == ScheduleKind::kZeroBubbleH1) {
    const double idle = (p - 1) * (c.forward + c.backward_input - c.backward_weight);
    const double busy = m * (c.forward + c.backward_input + c.backward_weight);
    os << "(p-1)(F+B-W) / (m(F+B+W) + (p-1)(F+B-W)) = ";
    if (c.forward == 1 && c.backward_input == 1 && c.backward_weight == 1) {
      os << (p - 1) << "/" << (3 * m + p - 1) << " = ";
    }
    os << Percent(idle + busy > 0 ? idle / (idle + busy) : 0) << "  (ZB-H1, Qi et al. 2023)";
  } else if (s.kind == ScheduleKind::kInterleaved1F1B && v > 1) {
    os << "(p-1)/(v*m+p-1) = " << (p - 1) << "/" << (v * m + p - 1) << " = "
       << Percent(double(p - 1) / double(v * m + p - 1))
       << "  (interleaved 1F1B: the 1F1B bubble divided by v, Narayanan et al. 2021)";
  } else {
    os << "(p-1)/(m+p-1) = " << (p - 1) << "/" << (m + p - 1) << " = " << Percent(double(p - 1) / double(m + p - 1))
       << "  (GPipe and 1F1B)";
  }
  return os.str();
}

}  // namespace

int RunScheduleCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Args args;
  if (int code = ParseArgs(argc, argv, &args, out, err); code >= 0) return code;
  const ScheduleKind kind = ParseScheduleKind(args.kind).value();
  Result<PipelineSchedule> schedule = BuildSchedule(kind, args.stages, args.microbatches, args.virtual_stages);
  if (!schedule.ok()) {
    err << "baton schedule: " << schedule.status().message() << "\n";
    return 2;
  }
  const PipelineSchedule& s = *schedule;
  const ScheduleCosts& c = args.costs;
  out << ScheduleKindTitle(s.kind) << ": " << s.stages << " stages, " << s.microbatches << " micro-batches";
  if (s.virtual_stages > 1) out << ", " << s.virtual_stages << " chunks per rank";
  out << "; costs F=" << Number(c.forward) << " B=" << Number(c.backward_input) << " W=" << Number(c.backward_weight)
      << " (a fused backward costs B+W = " << Number(c.backward_input + c.backward_weight) << ")\n\n";
  if (args.actions) out << ScheduleToString(s) << "\n";

  Result<ScheduleReport> report = VerifySchedule(s, c, args.memory_budget);
  if (!report.ok()) {
    err << "baton schedule: the verifier rejects this schedule: " << report.status().message() << "\n";
    return 1;
  }
  const ScheduleReport& rep = *report;
  out << RenderTimeline(s, rep) << "\n";
  out << "bubble: " << Percent(rep.bubble_fraction) << " (simulated: idle / (ranks x makespan), makespan "
      << Number(rep.makespan) << " time units)\n";
  out << "textbook: " << TextbookBubble(s, c) << "\n";
  out << "peak in-flight micro-batches per rank (activations held from F to the end of its backward"
      << (s.kind == ScheduleKind::kZeroBubbleH1 ? ", i.e. W" : "") << (s.virtual_stages > 1 ? "; counted per chunk" : "")
      << "):";
  for (int r = 0; r < s.stages; ++r) out << (r ? ", " : " ") << "rank " << r << ": " << rep.peak_inflight[r];
  out << "\n";
  if (args.memory_budget > 0) out << "memory budget: " << args.memory_budget << " per rank, respected\n";
  return 0;
}

int RunScheduleCommand(int argc, char** argv) {
  const int code = RunScheduleCommand(argc, argv, std::cout, std::cerr);
  std::cout.flush();
  return code;
}

}  // namespace baton
