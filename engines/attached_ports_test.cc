#include "engines/attached_ports.h"

#include <memory>
#include <string>
#include <vector>

#include "engines/testing/fake_port.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

std::unique_ptr<Port> NewPort(const std::string& name) {
  return std::make_unique<FakePort>(name, PortKind::kApp);
}

// An entry with data of the engine's own beside the port, as the vswitch keeps.
struct TaggedEntry {
  std::unique_ptr<Port> port;
  int tag = 0;
};

std::vector<std::string> Iterated(const AttachedPorts<>& table) {
  std::vector<std::string> names;
  for (const PortEntry& e : table) names.push_back(e.port->name());
  return names;
}

TEST(AttachedPortsTest, AddsAndListsInSlotOrder) {
  AttachedPorts<> table;
  EXPECT_TRUE(table.Names().empty());
  EXPECT_TRUE(table.begin() == table.end());
  ASSERT_TRUE(table.Add({NewPort("p0")}).ok());
  ASSERT_TRUE(table.Add({NewPort("p1")}).ok());
  ASSERT_TRUE(table.Add({NewPort("p2")}).ok());
  EXPECT_EQ(table.Names(), (std::vector<std::string>{"p0", "p1", "p2"}));
  EXPECT_EQ(Iterated(table), table.Names());
  std::vector<std::string> visited;
  table.ForEach([&](Port& p) { visited.push_back(p.name()); });
  EXPECT_EQ(visited, table.Names());
  EXPECT_EQ(table.IndexOf("p1"), 1u);
  EXPECT_EQ(table.IndexOf("p9"), AttachedPorts<>::kNoIndex);
}

TEST(AttachedPortsTest, DuplicateNameIsRefusedAndTheFirstPortStays) {
  AttachedPorts<TaggedEntry> table;
  ASSERT_TRUE(table.Add({NewPort("p0"), 1}).ok());
  EXPECT_EQ(table.CanAdd("p0").code(), absl::StatusCode::kAlreadyExists);
  absl::Status status = table.Add({NewPort("p0"), 2});
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(status.message(), "port p0 already attached");
  EXPECT_EQ(table.Names(), std::vector<std::string>{"p0"});
  EXPECT_EQ(table[0].tag, 1);
  EXPECT_TRUE(table.CanAdd("p1").ok());
}

TEST(AttachedPortsTest, RemovingAnUnknownNameChangesNothing) {
  AttachedPorts<> table;
  EXPECT_EQ(table.Remove("p0"), nullptr);
  ASSERT_TRUE(table.Add({NewPort("p0")}).ok());
  EXPECT_EQ(table.Remove("p1"), nullptr);
  EXPECT_EQ(table.Names(), std::vector<std::string>{"p0"});
  std::unique_ptr<Port> p0 = table.Remove("p0");
  ASSERT_NE(p0, nullptr);
  EXPECT_EQ(p0->name(), "p0");
  EXPECT_EQ(table.Remove("p0"), nullptr);  // a second time
  EXPECT_TRUE(table.Names().empty());
}

// A port keeps its index while it is attached; the lowest free slot is taken next, with fresh
// data; free slots at the end are given back; iteration skips free slots.
TEST(AttachedPortsTest, IndicesAreStableAndFreeSlotsAreReused) {
  AttachedPorts<TaggedEntry> table;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(table.Add({NewPort("p" + std::to_string(i)), i}).ok());
  ASSERT_NE(table.Remove("p1"), nullptr);
  EXPECT_EQ(table.slot_count(), 4u);
  EXPECT_EQ(table[1].port, nullptr);
  EXPECT_EQ(table[1].tag, 0);  // the entry's data went with its port
  EXPECT_EQ(table.IndexOf("p2"), 2u);
  EXPECT_EQ(table.Names(), (std::vector<std::string>{"p0", "p2", "p3"}));
  int tags = 0;
  for (TaggedEntry& e : table) tags += e.tag;
  EXPECT_EQ(tags, 0 + 2 + 3);

  EXPECT_EQ(table.next_index(), 1u);
  ASSERT_TRUE(table.Add({NewPort("p4"), 4}).ok());
  EXPECT_EQ(table.IndexOf("p4"), 1u);
  EXPECT_EQ(table.Names(), (std::vector<std::string>{"p0", "p4", "p2", "p3"}));

  ASSERT_NE(table.Remove("p2"), nullptr);
  ASSERT_NE(table.RemoveAt(3), nullptr);
  EXPECT_EQ(table.slot_count(), 2u);  // slots 2 and 3, free at the end, are gone
  EXPECT_EQ(table.RemoveAt(0)->name(), "p0");
  EXPECT_EQ(table.slot_count(), 2u);  // slot 0 is free, p4 still in slot 1
  EXPECT_EQ(table.IndexOf("p4"), 1u);
}

TEST(AttachedPortsTest, AFullTableRefusesAPort) {
  AttachedPorts<> table(/*max_ports=*/2);
  ASSERT_TRUE(table.Add({NewPort("p0")}).ok());
  ASSERT_TRUE(table.Add({NewPort("p1")}).ok());
  EXPECT_EQ(table.CanAdd("p2").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(table.Add({NewPort("p2")}).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(table.CanAdd("p1").code(), absl::StatusCode::kAlreadyExists);  // the name first
  ASSERT_NE(table.Remove("p0"), nullptr);
  EXPECT_TRUE(table.Add({NewPort("p2")}).ok());
  EXPECT_EQ(table.IndexOf("p2"), 0u);
}

}  // namespace
}  // namespace snapd
