// When a process's mappings snapshot may be forgotten (exited_processes.h).
#include "profiler/exited_processes.h"

#include <gtest/gtest.h>

#include <set>

namespace stackwatch::profiler {
namespace {

struct FakeProcesses {
  std::set<uint32_t> existing;
  ExitedProcesses exited{[this](uint32_t tgid) { return existing.count(tgid) > 0; }};
};

TEST(ExitedProcesses, AZombieIsKeptUntilItIsReaped) {
  FakeProcesses p;
  p.existing = {100, 200};
  p.exited.exited(100);  // exit event handled; not reaped yet
  EXPECT_TRUE(p.exited.take_gone().empty()) << "a zombie can still be drained";
  EXPECT_TRUE(p.exited.take_gone().empty());
  p.existing.erase(100);  // reaped
  EXPECT_EQ(p.exited.take_gone(), std::vector<uint32_t>{100});
  EXPECT_TRUE(p.exited.take_gone().empty()) << "forgotten once";
  EXPECT_EQ(p.exited.size(), 0u);
}

TEST(ExitedProcesses, AProcessAlreadyReapedGoesAtTheNextDrain) {
  FakeProcesses p;
  p.exited.exited(7);
  p.exited.exited(8);
  EXPECT_EQ(p.exited.take_gone(), (std::vector<uint32_t>{7, 8}));
}

TEST(ExitedProcesses, AReusedPidIsNotForgotten) {
  FakeProcesses p;
  p.exited.exited(300);
  p.exited.alive(300);  // a new process got the pid (fork or exec event)
  EXPECT_TRUE(p.exited.take_gone().empty());
  EXPECT_EQ(p.exited.size(), 0u);
}

}  // namespace
}  // namespace stackwatch::profiler
