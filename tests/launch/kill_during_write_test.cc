// The run is killed (SIGKILL, every rank at once, no chance to clean up) at
// random moments while it writes a checkpoint after every step, many times in
// a row (until 8 kills have landed inside a write). After every kill the newest committed checkpoint must verify and the
// run must resume from it; at the end, the numbers must equal a run that was
// never killed. The trial count and how many kills landed mid-write (a .tmp
// directory left behind) are printed for the record.
#include <random>
#include <regex>
#include <set>

#include "tests/launch/run_fixture.h"

namespace {

using namespace baton::testing;  // NOLINT: the fixture and its helpers

using KillDuringWrite = RunFixture;

TEST_F(KillDuringWrite, ThePreviousCommittedCheckpointAlwaysLoads) {
  // A 1 MB token table and a checkpoint after every step: most of the run's time is
  // spent writing checkpoints, so most kills land inside one. Constant learning rate:
  // the numbers do not depend on train.steps.
  MakeRunFiles(8192);
  const std::string base = "--set train.threads=1 --set parallel.stages=2 --set checkpoint.every=1 "
                           "--set checkpoint.keep=2 --set train.eval_every=0 ";
  // Kill until enough kills have landed inside a write (how many do depends on the
  // machine's load), within a bound on the trials.
  const int kWantMidWrite = 8, kMaxTrials = 80;
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> delay_ms(0, 400);
  int mid_write = 0, resumed = 0;
  long last_step = 0;
  int trials = 0;
  for (; trials < kMaxTrials && mid_write < kWantMidWrite; ++trials) {
    const int trial = trials;
    Background job = StartInBackground(TrainCommandLine("run", base + "--set train.steps=1000000 --resume auto", 2, true),
                                       dir_ / "trial.log");
    // Both ranks' pids (Open MPI gives each rank its own process group).
    std::set<pid_t> ranks;
    for (int i = 0; i < 400 && ranks.size() < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      const std::string out = job.Output();
      static const std::regex pid_re("replica 0 of 1 \\(pid ([0-9]+)[,)]");
      for (std::sregex_iterator it(out.begin(), out.end(), pid_re), end; it != end; ++it)
        ranks.insert(static_cast<pid_t>(std::stol((*it)[1])));
    }
    ASSERT_EQ(ranks.size(), 2u) << job.Output();
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + delay_ms(rng)));
    for (pid_t p : ranks) kill(p, SIGKILL);
    kill(job.pid, SIGKILL);
    job.Wait(30);
    const std::string out = job.Output();
    if (out.find("resumed from") != std::string::npos) ++resumed;
    for (const auto& e : fs::directory_iterator(dir_ / "run/ckpt"))
      if (e.path().string().find(".tmp") != std::string::npos) ++mid_write;
    // The newest committed checkpoint verifies, every checksum.
    CommandResult inspect = Shell(std::string(BATON_BINARY) + " inspect " + (dir_ / "run").string());
    if (inspect.output.find("has no LATEST") != std::string::npos) continue;  // killed before the first commit
    ASSERT_EQ(inspect.exit_code, 0) << "trial " << trial << ":\n" << inspect.output << "\n" << out;
    const std::smatch m = [&] {
      std::smatch s;
      std::regex_search(inspect.output, s, std::regex("step ([0-9]+), "));
      return s;
    }();
    ASSERT_FALSE(m.empty()) << inspect.output;
    const long step = std::stol(m[1]);
    EXPECT_GE(step, last_step) << "a committed checkpoint went backwards";
    last_step = step;
  }
  std::printf("[ trials   ] %d SIGKILLs, %d landed while a checkpoint was being written (.tmp left behind), "
              "%d runs resumed from the previous kill's checkpoint; last committed step %ld\n",
              trials, mid_write, resumed, last_step);
  EXPECT_GE(mid_write, kWantMidWrite) << "too few kills landed inside a write to test anything";
  EXPECT_GE(resumed, trials / 2);

  // The run finishes from wherever it was, with the numbers of a run never killed.
  const std::string length = "--set train.steps=" + std::to_string(last_step + 5) + " ";
  CommandResult rest = Train("run", base + length + "--resume auto", 2);
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  ASSERT_EQ(Train("straight", base + length, 2).exit_code, 0);
  auto a = LossLines("straight"), b = LossLines("run");
  ASSERT_EQ(a.size(), b.size());
  for (size_t l = 0; l < a.size(); ++l)
    for (const char* key : {"step", "loss", "grad_norm", "val_loss"})
      if (a[l].contains(key)) {
        EXPECT_EQ(a[l][key].dump(), b[l][key].dump()) << key << " line " << l;
      }
}

}  // namespace
