#include "runtime/comm_watchdog.h"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "runtime/cuda_device.h"
#include "runtime/log.h"

namespace baton {

CudaEvent::CudaEvent() { BATON_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);  // pending work keeps its resources until it completes
}

CommWatchdog& CommWatchdog::Instance() {
  static CommWatchdog* instance = new CommWatchdog();  // never destroyed: its thread may outlive main
  return *instance;
}

void CommWatchdog::set_timeout_seconds(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  timeout_seconds_ = seconds;
}

double CommWatchdog::timeout_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timeout_seconds_;
}

void CommWatchdog::set_failure_handler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  failure_handler_ = std::move(handler);
}

void CommWatchdog::StartLocked() {
  if (!started_) {
    started_ = true;
    const int device = cuda::CurrentDevice();
    std::thread([this, device] {
      cudaSetDevice(device);
      Run();
    }).detach();
  }
  wake_.notify_one();
}

void CommWatchdog::Watch(std::shared_ptr<CudaEvent> done, std::string what) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back(Entry{std::move(done), nullptr, std::move(what), std::chrono::steady_clock::now()});
  StartLocked();
}

void CommWatchdog::WatchHost(std::shared_ptr<std::atomic<bool>> finished, std::string what) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back(Entry{nullptr, std::move(finished), std::move(what), std::chrono::steady_clock::now()});
  StartLocked();
}

void CommWatchdog::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  ++paused_;
}

void CommWatchdog::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (paused_ > 0 && --paused_ == 0)
    for (Entry& e : entries_) e.posted = std::chrono::steady_clock::now();
}

HostWatch::HostWatch(std::string what) : finished_(std::make_shared<std::atomic<bool>>(false)) {
  CommWatchdog::Instance().WatchHost(finished_, std::move(what));
}

int CommWatchdog::AddCommunicator(ncclComm_t comm, std::string name) {
  std::lock_guard<std::mutex> lock(mu_);
  const int id = next_comm_id_++;
  comms_[id] = {comm, std::move(name)};
  return id;
}

bool CommWatchdog::RemoveCommunicator(int id) {
  std::lock_guard<std::mutex> lock(mu_);  // waits while the watchdog aborts communicators
  return comms_.erase(id) > 0;
}

std::string CommWatchdog::Check() {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < entries_.size();) {
    Entry& e = entries_[i];
    const cudaError_t state = e.done ? cudaEventQuery(e.done->get()) : *e.finished ? cudaSuccess : cudaErrorNotReady;
    if (state == cudaSuccess || state == cudaErrorCudartUnloading) {  // done, or the process is exiting
      entries_[i] = std::move(entries_.back());
      entries_.pop_back();
      continue;
    }
    if (state != cudaErrorNotReady) {
      (void)cudaGetLastError();
      return e.what + " failed on the GPU: " + cudaGetErrorString(state);
    }
    const double waited = std::chrono::duration<double>(now - e.posted).count();
    if (timeout_seconds_ > 0 && paused_ == 0 && waited > timeout_seconds_) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    " did not complete within %.0f s (parallel.comm_timeout_seconds): a peer rank died, hangs or "
                    "posted a different operation",
                    timeout_seconds_);
      return e.what + buf;
    }
    ++i;
  }
  for (const auto& [id, comm] : comms_) {
    ncclResult_t async = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm.first, &async);
    if (rc != ncclSuccess) return "ncclCommGetAsyncError on " + comm.second + ": " + ncclGetErrorString(rc);
    if (async != ncclSuccess && async != ncclInProgress)
      return "NCCL reports an error on " + comm.second + ": " + ncclGetErrorString(async) + " (" +
             ncclGetLastError(comm.first) + ")";
  }
  return "";
}

void CommWatchdog::Fail(const std::string& reason) {
  std::function<void(const std::string&)> handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handler = failure_handler_;
  }
  LogError("%s; aborting the job", reason.c_str());
  if (handler) {
    handler(reason);
    return;
  }
  // ncclCommAbort makes kernels that wait for a dead peer return. It runs under the lock, so
  // that a transport being destroyed meanwhile does not destroy the same communicator; it can
  // block on a wedged proxy thread, so the job ends after a grace period anyway.
  auto aborted = std::make_shared<std::atomic<bool>>(false);
  std::thread([this, aborted] {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, comm] : comms_) ncclCommAbort(comm.first);
    comms_.clear();
    *aborted = true;
  }).detach();
  for (int i = 0; i < 100 && !*aborted; ++i) usleep(100 * 1000);
  // MPI runs single-threaded (Open MPI's MPI_THREAD_MULTIPLE changes how some error paths
  // behave), and the main thread may be inside MPI: MPI_Abort from here works in practice
  // (it goes through the launcher), and should it hang, the process exits anyway; mpirun
  // then ends the job because a rank exited non-zero.
  std::thread([] {
    sleep(20);
    _exit(1);
  }).detach();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

void CommWatchdog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (entries_.empty() && comms_.empty()) {
      wake_.wait(lock);
      continue;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(50));
    if (failed_) continue;
    const std::string reason = Check();
    if (reason.empty()) continue;
    failed_ = true;
    entries_.clear();
    lock.unlock();
    Fail(reason);
    lock.lock();
  }
}

}  // namespace baton
