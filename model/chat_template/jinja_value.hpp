#pragma once
// troupe::jinja values: what template expressions evaluate to, and the Python behaviour Jinja2
// gives them (truthiness, str(), repr(), json.dumps, ==, <, attribute and item access, slicing).
//
// A Value is one of
//   - data: JSON (nlohmann::ordered_json, so objects keep their key order as Python dicts do and
//     `tojson` prints a request's keys in the order it gave them);
//   - undefined: a missing variable, attribute or item; it remembers why, and using it where a
//     value is needed raises that ("'foo' is undefined"), as Jinja2's default Undefined does;
//   - a namespace: the attribute bag of `namespace(...)` (also used for `loop`);
//   - a function: a macro or a global such as `raise_exception`.
// Ownership: data is immutable once in a Value and shared, so copying a Value, or taking an item or
// member of its data, copies no JSON (members alias their parent). A namespace is shared by every
// Value that refers to it: `{% set ns.x = 1 %}` inside a loop is seen after it, as in Jinja2.
// Lists and dicts hold data only: putting a namespace, function or undefined in one is an error.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace troupe::jinja {

using Json = nlohmann::ordered_json;

// What one render may use. Templates come from downloaded model folders and their inputs from
// HTTP clients, so every way to grow without bound stops at one of these.
struct RenderLimits {
  size_t max_output_bytes = size_t{32} << 20;    // the rendered text, and any one string or list built while rendering
  size_t max_loop_iterations = size_t{1} << 20;  // summed over every loop of a render; also caps range()
  int max_depth = 200;                           // nested macro calls, expressions and statements, at once
};
// Data nested deeper than this cannot be printed, compared or converted (the walks recurse).
inline constexpr int kMaxDataNesting = 256;

// Errors from value operations, filters and tests; the renderer adds the template line and
// rethrows them as troupe::Error.
struct ValueError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
template <typename... Args>
[[noreturn]] void value_error(fmt::format_string<Args...> format, Args&&... args) {
  throw ValueError(fmt::format(format, std::forward<Args>(args)...));
}

struct Namespace;
struct Function;

class Value {
 public:
  Value() : content_(Undefined{"undefined value"}) {}
  explicit Value(Json data) : content_(std::make_shared<const Json>(std::move(data))) {}
  explicit Value(std::shared_ptr<Namespace> ns) : content_(std::move(ns)) {}
  explicit Value(std::shared_ptr<const Function> function) : content_(std::move(function)) {}
  static Value undefined(std::string reason) { return Value(Undefined{std::move(reason)}); }

  bool is_undefined() const { return std::holds_alternative<Undefined>(content_); }
  bool is_data() const { return std::holds_alternative<DataPtr>(content_); }
  // The data; raises the undefined's reason, or says a namespace or function is not data.
  const Json& data() const;
  Namespace* as_namespace() const;
  const Function* as_function() const;
  const std::string& undefined_reason() const { return std::get<Undefined>(content_).reason; }
  // A Value for `part`, which must lie inside data(): shares this value's storage.
  Value part(const Json& part) const { return Value(DataPtr(std::get<DataPtr>(content_), &part)); }

 private:
  struct Undefined {
    std::string reason;
  };
  using DataPtr = std::shared_ptr<const Json>;
  explicit Value(Undefined undefined) : content_(std::move(undefined)) {}
  explicit Value(DataPtr data) : content_(std::move(data)) {}
  std::variant<Undefined, DataPtr, std::shared_ptr<Namespace>, std::shared_ptr<const Function>> content_;
};

struct Namespace {
  std::map<std::string, Value> attributes;
};

// The arguments of a call, a filter or a test (without the filtered or tested value).
struct CallArguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;

  // Fails unless every argument matches one of `parameters` (positionally, or by name).
  void expect(std::string_view callee, const std::vector<std::string_view>& parameters) const;
  // The argument given at `index` or by `name`; nullptr when it was not given.
  const Value* find(size_t index, std::string_view name) const;
  Value get(size_t index, std::string_view name, Value fallback) const;
};

struct Function {
  std::string name;
  std::function<Value(const CallArguments&)> call;
};

bool is_truthy(const Value& value);
// Python's type name of a value ("str", "dict", "NoneType", ...), for error messages.
std::string type_name(const Value& value);
// str(value): strings as they are, undefined as "", the rest as Python prints them (None, True, [1, 'a']).
std::string to_string(const Value& value);

// json.dumps(value, ensure_ascii=False, indent=..., separators=..., sort_keys=...) as Python writes it.
struct JsonStyle {
  std::optional<std::string> indent;  // none: one line
  std::string item_separator = ", ";  // ", " or, with an indent, ","
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Fails past `max_bytes` of output.
std::string to_json_text(const Json& data, const JsonStyle& style, size_t max_bytes);

// Python's == and the ordering of <, <=, >, >= (numbers, strings, lists); ordering other kinds fails.
bool equal(const Value& a, const Value& b);
bool less(const Value& a, const Value& b);

// Jinja2's `value.name` and `value[key]`: a missing attribute or item is undefined, not an error.
Value get_attribute(const Value& value, const std::string& name);
Value get_item(const Value& value, const Value& key);
// value[start:stop:step] on a string or list, Python's semantics (negative indices and steps).
Value get_slice(const Value& value, const Value& start, const Value& stop, const Value& step);

// The code points of a UTF-8 string, each as its bytes (a stray byte counts as one).
std::vector<std::string_view> code_points(std::string_view text);
// Python's str.isspace() for the code point starting at text[pos]; its byte length, or 0.
size_t whitespace_length(std::string_view text, size_t pos);

// Integers stay int64 while they fit (Python's ints do not overflow; a result that would is an error).
bool is_integer(const Json& data);  // true for integers and booleans, as Python's int
int64_t to_integer(const Json& data);
double to_double(const Json& data);
std::string format_double(double value);  // Python's repr(float): 1.0, 0.1, 1e-05, 1e+16

}  // namespace troupe::jinja
