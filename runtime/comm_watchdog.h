// The communication watchdog: a GPU collective or send/receive that never
// completes (a peer died, hangs, or posted something else) would otherwise
// block the job forever, because the host only ever waits on streams. Every
// NCCL operation registers here with the CUDA event recorded after it; a
// background thread polls the events and the communicators' asynchronous
// errors, and when an operation is older than the timeout, or NCCL reports an
// error, it logs which rank waited for what, aborts the registered
// communicators and ends the whole job (MPI_Abort), whatever the main thread is
// blocked in. The same approach as PyTorch's ProcessGroupNCCL watchdog.
//
// Thread-safe. One per process (Instance()); the thread starts with the first
// registration and sleeps while nothing is registered.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace baton {

// A CUDA event owned by whoever still needs it (the transport and the watchdog).
class CudaEvent {
 public:
  CudaEvent();
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class CommWatchdog {
 public:
  static CommWatchdog& Instance();

  // Seconds an operation may take from being posted; 0 = never time out
  // (NCCL errors still abort). Default 600.
  void set_timeout_seconds(double seconds);
  double timeout_seconds() const;

  // Watches `done` (recorded after the operation on its stream) until it has
  // completed; `what` names the operation, its peer or group, and this rank.
  void Watch(std::shared_ptr<CudaEvent> done, std::string what);
  // Watches a blocking host call (MPI) until `finished` is set.
  void WatchHost(std::shared_ptr<std::atomic<bool>> finished, std::string what);

  // Communicators to poll for asynchronous errors and to abort on failure.
  int AddCommunicator(ncclComm_t comm, std::string name);
  // True: the caller still owns the communicator (destroys it). False: the
  // watchdog has aborted it (and it must not be touched again).
  bool RemoveCommunicator(int id);

  // While paused (nested), nothing times out; on the last Resume every watched
  // operation's clock starts again. For phases where ranks may legitimately wait
  // long for each other (a checkpoint written to a slow file system).
  void Pause();
  void Resume();

  // Testing aid: what to do instead of aborting the job (the reason is passed).
  void set_failure_handler(std::function<void(const std::string&)> handler);

 private:
  CommWatchdog() = default;
  void StartLocked();
  void Run();
  // The reason to fail, or "" while everything is fine. Called with mu_ held.
  std::string Check();
  void Fail(const std::string& reason);

  struct Entry {
    std::shared_ptr<CudaEvent> done;               // a GPU operation, or
    std::shared_ptr<std::atomic<bool>> finished;   // a blocking host call
    std::string what;
    std::chrono::steady_clock::time_point posted;
  };

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Entry> entries_;
  std::map<int, std::pair<ncclComm_t, std::string>> comms_;
  int next_comm_id_ = 1;
  int paused_ = 0;
  double timeout_seconds_ = 600;
  bool started_ = false, failed_ = false;
  std::function<void(const std::string&)> failure_handler_;
};

// Watches the enclosing blocking host call (an MPI collective on GPU runs,
// where a peer that hangs would otherwise block this rank silently).
class HostWatch {
 public:
  explicit HostWatch(std::string what);
  ~HostWatch() { *finished_ = true; }
  HostWatch(const HostWatch&) = delete;
  HostWatch& operator=(const HostWatch&) = delete;

 private:
  std::shared_ptr<std::atomic<bool>> finished_;
};

}  // namespace baton
