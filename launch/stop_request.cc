#include "launch/stop_request.h"

#include <signal.h>

#include <cstdio>
#include <cstring>

namespace baton {
namespace {

volatile sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int signo) { g_stop_signal = signo; }

std::string SignalName(int signo) {
  switch (signo) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    default: return "signal " + std::to_string(signo);
  }
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking I/O and MPI calls carry on; the step boundary looks at the flag
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int ReceivedStopSignal() { return g_stop_signal; }

Result<std::string> StopAgreement::Check(double next_step_seconds, double checkpoint_seconds) {
  // Margins: a step can be slower than the last one, and a checkpoint slower than the estimate.
  const double needed = 1.5 * next_step_seconds + 2.0 * checkpoint_seconds + 5.0;
  const bool out_of_time = budget_seconds_ > 0 && clock_.Seconds() + needed > budget_seconds_;
  // Each rank's (signal number, out of time); a signal on any rank stops every rank.
  BATON_ASSIGN_OR_RETURN(std::vector<double> votes,
                         AllGatherValues(world_, {static_cast<double>(ReceivedStopSignal()), out_of_time ? 1.0 : 0.0}));
  bool any_out_of_time = false;
  for (size_t r = 0; r < votes.size() / 2; ++r) {
    if (votes[2 * r] != 0) return SignalName(static_cast<int>(votes[2 * r])) + " on rank " + std::to_string(r);
    any_out_of_time |= votes[2 * r + 1] != 0;
  }
  if (any_out_of_time) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "the wall-time budget of %.1f min (checkpoint.wall_time_minutes)",
                  budget_seconds_ / 60.0);
    return std::string(buf);
  }
  return std::string();
}

}  // namespace baton
