// Stopping a run cleanly: on SIGTERM or SIGUSR1 (SLURM's --signal, a
// preemption, a user's `kill`) or before a wall-time budget runs out, every
// rank stops at the same step boundary, the run writes a checkpoint and exits
// 0, and `--resume auto` continues it.
//
// The handlers only record the signal. StopAgreement::Check is a collective
// every rank calls at every step boundary, so one rank's signal is enough: all
// ranks learn it at the same step. (mpirun forwards SIGUSR1 to every rank but
// answers SIGTERM by killing them: send SIGUSR1 to mpirun.)
#pragma once

#include <string>

#include "runtime/status.h"
#include "runtime/timer.h"
#include "runtime/transport.h"

namespace baton {

// Installs the SIGTERM and SIGUSR1 handlers (idempotent).
void InstallStopSignalHandlers();
// The signal received so far (0 if none).
int ReceivedStopSignal();

class StopAgreement {
 public:
  // `budget_seconds` <= 0: no wall-time budget. Time counts from construction.
  StopAgreement(Transport* world, double budget_seconds) : world_(world), budget_seconds_(budget_seconds) {}

  // Collective. Returns why the run stops now ("SIGUSR1 on rank 3", "the wall-time
  // budget of 60.0 min"), or "" to go on. `next_step_seconds` and
  // `checkpoint_seconds` estimate what must still fit in the budget.
  Result<std::string> Check(double next_step_seconds, double checkpoint_seconds);

 private:
  Transport* world_;
  double budget_seconds_;
  Timer clock_;
};

}  // namespace baton
