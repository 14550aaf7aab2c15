// AttachedPorts: the ports an engine holds, by name, with what the engine keeps for each. One table
// serves every engine kind: AddPort, RemovePort, PortNames and ForEachPort are written once here.
//
// Entry is the engine's per-port record. It holds the port itself in a member
// `std::unique_ptr<Port> port` and whatever else the engine keeps beside it (the vswitch: the
// app's identity, the port's link, its output list); an engine with nothing to add takes the
// default, PortEntry. Entry must be default-constructible and movable.
//
// Entries live in one vector, in slots. A port keeps its slot, and so its index, from Add to
// Remove: an engine may use the index as the port's number (the vswitch's MAC table does). A
// removed port leaves a free slot (Entry{}: `port` is null), which the next Add takes, the lowest
// first; free slots at the end are given back.
//
// The hot path walks the entries in place, with no std::function and no lookup by name: `for
// (Entry& e : table)` visits the attached ports in slot order; loops that need the index go
// `for (size_t i = 0; i < table.slot_count(); ++i)` and skip the slots whose `port` is null.
//
// Not thread-safe: the engine's thread only, as every Engine method that touches ports.
#ifndef SNAPD_ENGINES_ATTACHED_PORTS_H_
#define SNAPD_ENGINES_ATTACHED_PORTS_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engines/port.h"

namespace snapd {

// The entry of an engine that keeps nothing beside each port.
struct PortEntry {
  std::unique_ptr<Port> port;
};

template <typename Entry = PortEntry>
class AttachedPorts {
 public:
  // IndexOf's answer for a name no port has.
  static constexpr size_t kNoIndex = SIZE_MAX;

  // A table whose ports take the indices below max_ports (by default, any number).
  explicit AttachedPorts(size_t max_ports = kNoIndex) : max_ports_(max_ports) {}

  // OK if Add would take a port of this name: ALREADY_EXISTS if a port of that name is attached,
  // RESOURCE_EXHAUSTED if every index below max_ports is taken. For an engine that must check
  // the name before anything else (the vswitch: before the attachment).
  absl::Status CanAdd(absl::string_view name) const {
    if (IndexOf(name) != kNoIndex) {
      return absl::AlreadyExistsError(absl::StrCat("port ", name, " already attached"));
    }
    if (next_index() >= max_ports_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many ports: an engine holds at most ", max_ports_));
    }
    return absl::OkStatus();
  }

  // The slot the next Add fills: the lowest free one.
  size_t next_index() const {
    size_t i = 0;
    while (i < slots_.size() && slots_[i].port) ++i;
    return i;
  }

  // Attaches entry.port (not null) in slot next_index(). Fails as CanAdd does, and the entry and
  // its port are then destroyed.
  absl::Status Add(Entry entry) {
    absl::Status status = CanAdd(entry.port->name());
    if (!status.ok()) return status;
    size_t index = next_index();
    if (index == slots_.size()) {
      slots_.push_back(std::move(entry));
    } else {
      slots_[index] = std::move(entry);
    }
    return absl::OkStatus();
  }

  // The slot of the port called `name`, or kNoIndex.
  size_t IndexOf(absl::string_view name) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].port && slots_[i].port->name() == name) return i;
    }
    return kNoIndex;
  }

  // Detaches the port called `name` and hands it back; nullptr if no port has that name. Its
  // slot becomes free (Entry{}), and what the entry held beside the port is destroyed.
  std::unique_ptr<Port> Remove(absl::string_view name) {
    size_t index = IndexOf(name);
    return index == kNoIndex ? nullptr : RemoveAt(index);
  }
  // The same for the port in slot `index` (below slot_count()); nullptr if that slot is free.
  std::unique_ptr<Port> RemoveAt(size_t index) {
    std::unique_ptr<Port> port = std::move(slots_[index].port);
    slots_[index] = Entry();
    while (!slots_.empty() && !slots_.back().port) slots_.pop_back();
    return port;
  }

  // The names of the attached ports, in slot order.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const Entry& e : *this) names.push_back(e.port->name());
    return names;
  }
  // Calls fn(Port&) on each attached port, in slot order.
  template <typename Fn>
  void ForEach(Fn&& fn) {
    for (Entry& e : *this) fn(*e.port);
  }

  // Slots in use or free, up to the last port: the bound of a loop over indices.
  size_t slot_count() const { return slots_.size(); }
  // The entry in slot `index` (below slot_count()); its `port` is null if the slot is free.
  Entry& operator[](size_t index) { return slots_[index]; }
  const Entry& operator[](size_t index) const { return slots_[index]; }

  // Iteration over the attached ports' entries, in slot order (free slots are skipped).
  template <typename E, typename It>
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using pointer = E*;
    using reference = E&;

    Iterator(It it, It end) : it_(it), end_(end) { SkipFree(); }
    E& operator*() const { return *it_; }
    E* operator->() const { return &*it_; }
    Iterator& operator++() {
      ++it_;
      SkipFree();
      return *this;
    }
    bool operator==(const Iterator& other) const { return it_ == other.it_; }
    bool operator!=(const Iterator& other) const { return it_ != other.it_; }

   private:
    void SkipFree() {
      while (it_ != end_ && !it_->port) ++it_;
    }
    It it_;
    It end_;
  };
  using iterator = Iterator<Entry, typename std::vector<Entry>::iterator>;
  using const_iterator = Iterator<const Entry, typename std::vector<Entry>::const_iterator>;

  iterator begin() { return iterator(slots_.begin(), slots_.end()); }
  iterator end() { return iterator(slots_.end(), slots_.end()); }
  const_iterator begin() const { return const_iterator(slots_.begin(), slots_.end()); }
  const_iterator end() const { return const_iterator(slots_.end(), slots_.end()); }

 private:
  const size_t max_ports_;
  std::vector<Entry> slots_;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_ATTACHED_PORTS_H_
