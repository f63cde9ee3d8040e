#include "model/chat_template/jinja_value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "model/tokenizer/utf8.hpp"

namespace troupe::jinja {

const Json& Value::data() const {
  if (const auto* data = std::get_if<DataPtr>(&content_)) return **data;
  if (is_undefined()) throw ValueError(undefined_reason());
  value_error("a {} cannot be used as data (in a list, a dict, tojson or an operator)", type_name(*this));
}

Namespace* Value::as_namespace() const {
  const auto* ns = std::get_if<std::shared_ptr<Namespace>>(&content_);
  return ns ? ns->get() : nullptr;
}

const Function* Value::as_function() const {
  const auto* function = std::get_if<std::shared_ptr<const Function>>(&content_);
  return function ? function->get() : nullptr;
}

void CallArguments::expect(std::string_view callee, const std::vector<std::string_view>& parameters) const {
  if (positional.size() > parameters.size())
    value_error("{}() takes at most {} arguments ({} given)", callee, parameters.size(), positional.size());
  for (const auto& [name, value] : keywords) {
    auto it = std::find(parameters.begin(), parameters.end(), name);
    if (it == parameters.end()) value_error("{}() got an unexpected keyword argument '{}'", callee, name);
    if (size_t(it - parameters.begin()) < positional.size())
      value_error("{}() got multiple values for argument '{}'", callee, name);
  }
}

const Value* CallArguments::find(size_t index, std::string_view name) const {
  for (const auto& [key, value] : keywords)
    if (key == name) return &value;
  return index < positional.size() ? &positional[index] : nullptr;
}

Value CallArguments::get(size_t index, std::string_view name, Value fallback) const {
  const Value* found = find(index, name);
  return found ? *found : std::move(fallback);
}

bool is_integer(const Json& data) { return data.is_number_integer() || data.is_boolean(); }

int64_t to_integer(const Json& data) {
  if (data.is_boolean()) return data.get<bool>() ? 1 : 0;
  if (data.is_number_unsigned() && data.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    value_error("integer {} is too large", data.get<uint64_t>());
  if (data.is_number_integer()) return data.get<int64_t>();
  if (data.is_number_float()) return static_cast<int64_t>(data.get<double>());
  value_error("expected a number, got {}", data.type_name());
}

double to_double(const Json& data) {
  if (data.is_boolean()) return data.get<bool>() ? 1.0 : 0.0;
  if (data.is_number()) return data.get<double>();
  value_error("expected a number, got {}", data.type_name());
}

std::string format_double(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string_view text(buffer, end - buffer);  // shortest round trip: "-1.25e+02"
  std::string sign = text[0] == '-' ? "-" : "";
  if (!sign.empty()) text.remove_prefix(1);
  size_t e = text.find('e');
  std::string digits(text.substr(0, e));
  std::erase(digits, '.');
  int exponent = std::stoi(std::string(text.substr(e + 1)));
  if (exponent < -4 || exponent >= 16) {  // Python's repr switches to exponent notation here
    std::string mantissa = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    return fmt::format("{}{}e{}{:02d}", sign, mantissa, exponent < 0 ? '-' : '+', std::abs(exponent));
  }
  if (exponent < 0) return sign + "0." + std::string(size_t(-exponent - 1), '0') + digits;
  if (digits.size() <= size_t(exponent) + 1)
    return sign + digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
  return sign + digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
}

std::string type_name(const Value& value) {
  if (value.is_undefined()) return "Undefined";
  if (value.as_namespace()) return "namespace";
  if (value.as_function()) return "function";
  const Json& data = value.data();
  switch (data.type()) {
    case Json::value_t::null:
      return "NoneType";
    case Json::value_t::boolean:
      return "bool";
    case Json::value_t::string:
      return "str";
    case Json::value_t::array:
      return "list";
    case Json::value_t::object:
      return "dict";
    case Json::value_t::number_float:
      return "float";
    default:
      return "int";
  }
}

bool is_truthy(const Value& value) {
  if (value.is_undefined()) return false;
  if (!value.is_data()) return true;
  const Json& data = value.data();
  if (data.is_null()) return false;
  if (data.is_boolean()) return data.get<bool>();
  if (data.is_number_float()) return data.get<double>() != 0.0;
  if (data.is_number()) return to_integer(data) != 0;
  if (data.is_string()) return !data.get_ref<const std::string&>().empty();
  return !data.empty();  // lists, dicts
}

std::vector<std::string_view> code_points(std::string_view text) {
  std::vector<std::string_view> points;
  for (size_t pos = 0; pos < text.size();) {
    size_t length = std::max<size_t>(1, tokenizer::valid_utf8_char_length(text, pos));
    points.push_back(text.substr(pos, length));
    pos += length;
  }
  return points;
}

size_t whitespace_length(std::string_view text, size_t pos) {
  auto byte = static_cast<unsigned char>(text[pos]);
  if (byte < 0x80) return (byte >= 0x09 && byte <= 0x0D) || (byte >= 0x1C && byte <= 0x20) ? 1 : 0;
  size_t length = tokenizer::valid_utf8_char_length(text, pos);
  if (length == 0) return 0;
  size_t at = pos;
  char32_t c = tokenizer::next_code_point(text, at);
  bool space = c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
               c == 0x202F || c == 0x205F || c == 0x3000;
  return space ? length : 0;
}

namespace {

void check_nesting(int depth) {
  if (depth > kMaxDataNesting) value_error("data nested deeper than {} levels", kMaxDataNesting);
}

std::string python_repr_string(std::string_view text) {
  char quote = text.find('\'') != std::string_view::npos && text.find('"') == std::string_view::npos ? '"' : '\'';
  std::string out(1, quote);
  for (char c : text) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + quote;
}

void append_python(std::string& out, const Json& data, bool quote_strings, int depth) {
  check_nesting(depth);
  switch (data.type()) {
    case Json::value_t::null:
      out += "None";
      break;
    case Json::value_t::boolean:
      out += data.get<bool>() ? "True" : "False";
      break;
    case Json::value_t::number_float:
      out += format_double(data.get<double>());
      break;
    case Json::value_t::number_integer:
      out += std::to_string(data.get<int64_t>());
      break;
    case Json::value_t::number_unsigned:
      out += std::to_string(data.get<uint64_t>());
      break;
    case Json::value_t::string:
      out +=
          quote_strings ? python_repr_string(data.get_ref<const std::string&>()) : data.get_ref<const std::string&>();
      break;
    case Json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < data.size(); ++i) {
        if (i) out += ", ";
        append_python(out, data[i], true, depth + 1);
      }
      out += ']';
      break;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : data.items()) {
        out += (first ? "" : ", ") + python_repr_string(key) + ": ";
        append_python(out, member, true, depth + 1);
        first = false;
      }
      out += '}';
      break;
    }
    default:
      value_error("cannot print JSON of type {}", data.type_name());
  }
}

// A JSON string as Python's json.dumps(ensure_ascii=False) writes it.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    static const std::string_view escaped = "\"\\\n\r\t\b\f", letters = "\"\\nrtbf";
    if (size_t k = escaped.find(c); k != std::string_view::npos) {
      out += '\\';
      out += letters[k];
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_json(std::string& out, const Json& data, const JsonStyle& style, size_t max_bytes, int depth) {
  check_nesting(depth);
  if (out.size() > max_bytes) value_error("tojson output exceeds {} bytes", max_bytes);
  if (data.is_string()) return append_json_string(out, data.get_ref<const std::string&>());
  if (data.is_number_float()) {
    double value = data.get<double>();
    out += std::isnan(value)   ? "NaN"
           : std::isinf(value) ? (value < 0 ? "-Infinity" : "Infinity")
                               : format_double(value);
    return;
  }
  if (!data.is_structured()) return void(out += data.dump());  // null, booleans and integers as JSON has them
  bool is_object = data.is_object();
  if (data.empty()) return void(out += is_object ? "{}" : "[]");
  std::string newline;
  if (style.indent) {
    newline = "\n";
    for (int level = 0; level <= depth; ++level) newline += *style.indent;
  }
  out += (is_object ? "{" : "[") + newline;
  std::vector<std::pair<const std::string*, const Json*>> members;
  if (is_object) {
    for (const auto& [key, member] : data.items()) members.emplace_back(&key, &member);
    if (style.sort_keys)
      std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  } else {
    for (const Json& item : data) members.emplace_back(nullptr, &item);
  }
  for (size_t i = 0; i < members.size(); ++i) {
    if (i) out += style.item_separator + newline;
    if (members[i].first) {
      append_json_string(out, *members[i].first);
      out += style.key_separator;
    }
    append_json(out, *members[i].second, style, max_bytes, depth + 1);
  }
  if (style.indent) newline.resize(newline.size() - style.indent->size());
  out += newline + (is_object ? "}" : "]");
}

bool json_equal(const Json& a, const Json& b, int depth) {
  check_nesting(depth);
  bool a_number = a.is_number() || a.is_boolean(), b_number = b.is_number() || b.is_boolean();
  if (a_number || b_number) {
    if (!a_number || !b_number) return false;
    if (is_integer(a) && is_integer(b)) return to_integer(a) == to_integer(b);
    return to_double(a) == to_double(b);
  }
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!json_equal(a[i], b[i], depth + 1)) return false;
    return true;
  }
  if (a.is_object()) {  // Python dicts compare without regard to key order
    if (a.size() != b.size()) return false;
    for (const auto& [key, member] : a.items()) {
      auto it = b.find(key);
      if (it == b.end() || !json_equal(member, *it, depth + 1)) return false;
    }
    return true;
  }
  return a == b;
}

bool json_less(const Json& a, const Json& b, int depth) {
  check_nesting(depth);
  bool a_number = a.is_number() || a.is_boolean(), b_number = b.is_number() || b.is_boolean();
  if (a_number && b_number) {
    if (is_integer(a) && is_integer(b)) return to_integer(a) < to_integer(b);
    return to_double(a) < to_double(b);
  }
  if (a.is_string() && b.is_string()) return a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (!json_equal(a[i], b[i], depth + 1)) return json_less(a[i], b[i], depth + 1);
    }
    return a.size() < b.size();
  }
  value_error("'<' not supported between instances of '{}' and '{}'", type_name(Value(a)), type_name(Value(b)));
}

// Python's index normalisation for item access: -1 is the last element; nullopt when out of range.
std::optional<size_t> normalize_index(int64_t index, size_t size) {
  if (index < 0) index += static_cast<int64_t>(size);
  if (index < 0 || index >= static_cast<int64_t>(size)) return std::nullopt;
  return static_cast<size_t>(index);
}

}  // namespace

std::string to_string(const Value& value) {
  if (value.is_undefined()) return "";
  if (value.as_namespace()) return "<namespace>";
  if (const Function* function = value.as_function()) return "<function " + function->name + ">";
  std::string out;
  append_python(out, value.data(), /*quote_strings=*/false, 0);
  return out;
}

std::string to_json_text(const Json& data, const JsonStyle& style, size_t max_bytes) {
  std::string out;
  append_json(out, data, style, max_bytes, 0);
  if (out.size() > max_bytes) value_error("tojson output exceeds {} bytes", max_bytes);
  return out;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_data() && b.is_data()) return json_equal(a.data(), b.data(), 0);
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.as_namespace() || b.as_namespace()) return a.as_namespace() == b.as_namespace();
  return a.as_function() == b.as_function();
}

bool less(const Value& a, const Value& b) { return json_less(a.data(), b.data(), 0); }

Value get_attribute(const Value& value, const std::string& name) {
  if (value.is_undefined()) throw ValueError(value.undefined_reason());
  if (Namespace* ns = value.as_namespace()) {
    auto it = ns->attributes.find(name);
    return it != ns->attributes.end() ? it->second : Value::undefined("namespace has no attribute '" + name + "'");
  }
  if (value.is_data() && value.data().is_object()) {
    auto it = value.data().find(name);
    if (it != value.data().end()) return value.part(*it);
  }
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(value), name));
}

Value get_item(const Value& value, const Value& key) {
  if (value.is_undefined()) throw ValueError(value.undefined_reason());
  if (key.is_data() && key.data().is_string()) return get_attribute(value, key.data().get<std::string>());
  if (value.is_data() && key.is_data() && is_integer(key.data())) {
    const Json& data = value.data();
    if (data.is_array()) {
      if (auto index = normalize_index(to_integer(key.data()), data.size())) return value.part(data[*index]);
    } else if (data.is_string()) {
      auto points = code_points(data.get_ref<const std::string&>());
      if (auto index = normalize_index(to_integer(key.data()), points.size()))
        return Value(Json(std::string(points[*index])));
    }
  }
  return Value::undefined(fmt::format("{} object has no element {}", type_name(value), to_string(key)));
}

Value get_slice(const Value& value, const Value& start, const Value& stop, const Value& step) {
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_undefined() || v.data().is_null()) return std::nullopt;
    if (!is_integer(v.data())) value_error("slice indices must be integers or None");
    return to_integer(v.data());
  };
  const Json& data = value.data();
  std::vector<std::string_view> points;
  if (data.is_string())
    points = code_points(data.get_ref<const std::string&>());
  else if (!data.is_array())
    value_error("'{}' object is not subscriptable", type_name(value));
  const auto size = static_cast<int64_t>(data.is_string() ? points.size() : data.size());
  int64_t stride = bound(step).value_or(1);
  if (stride == 0) value_error("slice step cannot be zero");
  int64_t lower = stride < 0 ? -1 : 0, upper = stride < 0 ? size - 1 : size;
  auto clamp = [&](std::optional<int64_t> index, int64_t fallback) {
    if (!index) return fallback;
    return std::clamp(*index < 0 ? *index + size : *index, lower, upper);
  };
  int64_t from = clamp(bound(start), stride < 0 ? upper : lower);
  int64_t to = clamp(bound(stop), stride < 0 ? lower : upper);
  Json result = data.is_string() ? Json("") : Json::array();
  for (int64_t i = from; stride > 0 ? i < to : i > to; i += stride) {
    if (data.is_string())
      result.get_ref<std::string&>() += points[size_t(i)];
    else
      result.push_back(data[size_t(i)]);
  }
  return Value(std::move(result));
}

}  // namespace troupe::jinja
