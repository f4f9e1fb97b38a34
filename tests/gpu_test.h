// For tests that need a GPU: they report themselves skipped, with the reason,
// where none is usable (CTest shows them as skipped, not passed).
#pragma once

#include <gtest/gtest.h>

#include "runtime/device.h"

#define BATON_REQUIRE_GPU()                                                      \
  do {                                                                           \
    if (::baton::CudaDeviceCount() == 0)                                         \
      GTEST_SKIP() << "needs a GPU: " << ::baton::CudaUnavailableReason();       \
  } while (0)
