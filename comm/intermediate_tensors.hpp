#pragma once
// IntermediateTensors: what one pipeline stage hands the next (hidden states, residual, ...): an
// ordered map name -> Tensor. On the wire it is a small header (names, dtypes, shapes) followed by
// each tensor's bytes as its own message, so payloads are sent from and received into tensor
// memory without packing copies.
#include <string>
#include <utility>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

class IntermediateTensors {
 public:
  using Entry = std::pair<std::string, Tensor>;

  IntermediateTensors() = default;
  IntermediateTensors(std::initializer_list<Entry> entries);

  // Inserts at the end, or replaces in place when the name exists.
  void set(const std::string& name, Tensor tensor);
  bool contains(const std::string& name) const;
  // Throws naming the missing key and the keys present.
  const Tensor& at(const std::string& name) const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }

  // Wire header: magic, count, then per tensor name, dtype and shape. Tensors must be contiguous.
  std::string encode_header() const;
  // A header's entries, validated (magic, dtypes, at most 16 GiB in all, no trailing bytes) and
  // nothing allocated; throws troupe::Error naming what is wrong.
  struct HeaderEntry {
    std::string name;
    DType dtype;
    Shape shape;
  };
  static std::vector<HeaderEntry> decode_header(const std::string& header);
  // Allocates uninitialised CPU tensors described by a header (the receive side).
  static IntermediateTensors allocate_from_header(const std::string& header);
  // `reuse` itself when it matches the header exactly (names, dtypes, shapes), else fresh tensors.
  static IntermediateTensors reuse_or_allocate(const std::string& header, IntermediateTensors reuse);

 private:
  std::vector<Entry> entries_;
};

}  // namespace troupe
