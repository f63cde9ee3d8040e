#include "model/chat_template/jinja_builtins.hpp"

#include <utf8proc.h>
#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "model/tokenizer/utf8.hpp"

namespace troupe::jinja {
namespace {

Value text_value(std::string text) { return Value(Json(std::move(text))); }
Value bool_value(bool flag) { return Value(Json(flag)); }
bool is_numeric(const Json& data) { return data.is_number() || data.is_boolean(); }

// Roughly the memory a value takes, to stop templates that grow lists or strings without bound.
size_t approximate_bytes(const Json& data, int depth = 0) {
  if (depth > kMaxDataNesting) value_error("data nested deeper than {} levels", kMaxDataNesting);
  if (data.is_string()) return 16 + data.get_ref<const std::string&>().size();
  size_t bytes = 16;
  if (data.is_object())
    for (const auto& [key, member] : data.items()) bytes += key.size() + approximate_bytes(member, depth + 1);
  if (data.is_array())
    for (const Json& item : data) bytes += approximate_bytes(item, depth + 1);
  return bytes;
}

void check_size(size_t bytes, const RenderLimits& limits) {
  if (bytes > limits.max_output_bytes)
    value_error("a value of {} bytes exceeds the limit of {} bytes", bytes, limits.max_output_bytes);
}

Value integer_arithmetic(std::string_view op, int64_t a, int64_t b) {
  int64_t result = 0;
  bool overflow = false;
  if (op == "+") {
    overflow = __builtin_add_overflow(a, b, &result);
  } else if (op == "-") {
    overflow = __builtin_sub_overflow(a, b, &result);
  } else if (op == "*") {
    overflow = __builtin_mul_overflow(a, b, &result);
  } else if (op == "//" || op == "%") {
    if (b == 0) value_error("integer division or modulo by zero");
    if (b == -1) {  // INT64_MIN / -1 overflows in C++
      overflow = op == "//" && a == INT64_MIN;
      result = op == "//" && !overflow ? -a : 0;
    } else if (op == "//") {
      result = a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);  // Python floors
    } else {
      result = a % b + ((a % b != 0 && (a % b < 0) != (b < 0)) ? b : 0);  // sign of the divisor
    }
  } else if (op == "**") {
    if (b < 0) return Value(Json(std::pow(double(a), double(b))));
    result = 1;
    for (int64_t base = a, e = b; e > 0 && !overflow; e >>= 1) {
      if (e & 1) overflow |= __builtin_mul_overflow(result, base, &result);
      if (e > 1) overflow |= __builtin_mul_overflow(base, base, &base);
    }
  }
  if (overflow) value_error("integer overflow in {} {} {}", a, op, b);
  return Value(Json(result));
}

Value float_arithmetic(std::string_view op, double a, double b) {
  if ((op == "/" || op == "//" || op == "%") && b == 0) value_error("division by zero");
  if (op == "+") return Value(Json(a + b));
  if (op == "-") return Value(Json(a - b));
  if (op == "*") return Value(Json(a * b));
  if (op == "/") return Value(Json(a / b));
  if (op == "//") return Value(Json(std::floor(a / b)));
  if (op == "%") {
    double m = std::fmod(a, b);
    return Value(Json(m != 0 && (m < 0) != (b < 0) ? m + b : m));
  }
  return Value(Json(std::pow(a, b)));
}

Value repeat(const Json& sequence, int64_t count, const RenderLimits& limits) {
  count = std::max<int64_t>(count, 0);
  size_t unit = sequence.is_string() ? sequence.get_ref<const std::string&>().size() : approximate_bytes(sequence);
  if (unit && size_t(count) > limits.max_output_bytes / unit) check_size(SIZE_MAX, limits);
  Json result = sequence.is_string() ? Json("") : Json::array();
  for (int64_t i = 0; i < count; ++i) {
    if (sequence.is_string())
      result.get_ref<std::string&>() += sequence.get_ref<const std::string&>();
    else
      result.insert(result.end(), sequence.begin(), sequence.end());
  }
  return Value(std::move(result));
}

bool contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  const Json& data = container.data();
  if (data.is_string()) {
    if (!item.data().is_string()) value_error("'in <string>' requires a string as left operand");
    return data.get_ref<const std::string&>().find(item.data().get_ref<const std::string&>()) != std::string::npos;
  }
  if (data.is_array())
    return std::any_of(data.begin(), data.end(), [&](const Json& x) { return equal(container.part(x), item); });
  if (data.is_object())
    return item.is_data() && item.data().is_string() && data.contains(item.data().get<std::string>());
  value_error("argument of type '{}' is not iterable", type_name(container));
}

// str.strip/lstrip/rstrip: whitespace, or any of the code points in `chars`.
std::string strip(std::string_view text, const Value* chars, bool left, bool right) {
  bool whitespace = !chars || chars->is_undefined() || chars->data().is_null();
  std::string set = whitespace ? "" : to_string(*chars);
  auto set_points = code_points(set);
  auto points = code_points(text);
  auto strippable = [&](std::string_view point) {
    return whitespace ? whitespace_length(point, 0) == point.size()
                      : std::find(set_points.begin(), set_points.end(), point) != set_points.end();
  };
  size_t begin = 0, end = points.size();
  while (left && begin < end && strippable(points[begin])) ++begin;
  while (right && end > begin && strippable(points[end - 1])) --end;
  if (begin == end) return "";
  return std::string(points[begin].data(), points[end - 1].data() + points[end - 1].size());
}

Json split(std::string_view text, const Value& separator, int64_t max_splits) {
  Json parts = Json::array();
  if (separator.is_undefined() || separator.data().is_null()) {  // runs of whitespace
    size_t pos = 0;
    while (true) {
      while (pos < text.size() && whitespace_length(text, pos)) pos += whitespace_length(text, pos);
      if (pos >= text.size()) break;
      if (max_splits >= 0 && int64_t(parts.size()) == max_splits) {
        parts.push_back(std::string(text.substr(pos)));
        break;
      }
      size_t end = pos;
      while (end < text.size() && !whitespace_length(text, end)) ++end;
      parts.push_back(std::string(text.substr(pos, end - pos)));
      pos = end;
    }
    return parts;
  }
  std::string sep = to_string(separator);
  if (sep.empty()) value_error("empty separator");
  size_t pos = 0;
  for (size_t found; (max_splits < 0 || int64_t(parts.size()) < max_splits) &&
                     (found = text.find(sep, pos)) != std::string_view::npos;
       pos = found + sep.size())
    parts.push_back(std::string(text.substr(pos, found - pos)));
  parts.push_back(std::string(text.substr(pos)));
  return parts;
}

std::string replace(std::string_view text, std::string_view old, std::string_view replacement, int64_t count,
                    const RenderLimits& limits) {
  std::string out;
  auto budget_left = [&] { return count < 0 || count-- > 0; };
  if (old.empty()) {  // Python inserts before every character and at the end
    for (std::string_view point : code_points(text)) {
      if (budget_left()) out += replacement;
      out += point;
      check_size(out.size(), limits);
    }
    if (budget_left()) out += replacement;
    return out;
  }
  size_t pos = 0;
  for (size_t found; (found = text.find(old, pos)) != std::string_view::npos && budget_left();
       pos = found + old.size()) {
    out.append(text.substr(pos, found - pos)).append(replacement);
    check_size(out.size(), limits);
  }
  return out.append(text.substr(pos));
}

// Case mappings over code points, with utf8proc's simple (one to one) mappings where Python uses
// the full ones (Python's 'ß'.upper() is 'SS').
enum class Case { lower, upper, capitalize, python_title, jinja_title };

std::string change_case(std::string_view text, Case mode) {
  std::string out;
  bool word_start = true;
  for (size_t pos = 0; pos < text.size();) {
    if (tokenizer::valid_utf8_char_length(text, pos) == 0) {
      out += text[pos++];
      continue;
    }
    size_t start = pos;
    char32_t c = tokenizer::next_code_point(text, pos);
    bool upper = mode == Case::upper || (mode != Case::lower && word_start);
    tokenizer::append_utf8(out, static_cast<char32_t>(upper ? utf8proc_toupper(c) : utf8proc_tolower(c)));
    if (mode == Case::capitalize) word_start = false;
    if (mode == Case::python_title) word_start = utf8proc_toupper(c) == int32_t(c) && utf8proc_tolower(c) == int32_t(c);
    if (mode == Case::jinja_title)  // Jinja2 starts words after whitespace and - ( { [ <
      word_start =
          whitespace_length(text, start) || std::string_view("-({[<").find(text[start]) != std::string_view::npos;
  }
  return out;
}

std::string lower(std::string_view text) { return change_case(text, Case::lower); }
std::string upper(std::string_view text) { return change_case(text, Case::upper); }

std::string join(const std::vector<Value>& items, std::string_view separator, const RenderLimits& limits) {
  std::vector<std::string> texts;
  size_t total = 0;
  for (const Value& item : items) total += texts.emplace_back(to_string(item)).size() + separator.size();
  check_size(total, limits);
  std::string out;
  for (size_t i = 0; i < texts.size(); ++i) out.append(i ? separator : "").append(texts[i]);
  return out;
}

// item.attribute for map/selectattr/join, with dots walking deeper ("function.name", "items.0").
Value attribute_path(const Value& item, const Value& path_value) {
  std::string path = to_string(path_value);
  Value current = item;
  for (size_t pos = 0; pos <= path.size();) {
    size_t dot = std::min(path.find('.', pos), path.size());
    std::string part = path.substr(pos, dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(c); });
    current = get_item(current, digits ? Value(Json(std::stoll(part))) : Value(Json(part)));
    pos = dot + 1;
  }
  return current;
}

Json to_list(const std::vector<Value>& items) {
  Json list = Json::array();
  for (const Value& item : items) list.push_back(item.data());
  return list;
}

// The arguments after the first `skip` positional ones (the test or filter name of select/map).
CallArguments rest_of(const CallArguments& arguments, size_t skip) {
  CallArguments rest{{}, arguments.keywords};
  for (size_t i = skip; i < arguments.positional.size(); ++i) rest.positional.push_back(arguments.positional[i]);
  return rest;
}

// select/reject/selectattr/rejectattr: the items whose (attribute) passes the test (or is true), or fails it.
Value select_items(const Value& input, const CallArguments& arguments, bool by_attribute, bool keep) {
  size_t skip = by_attribute ? 1 : 0;
  if (by_attribute && arguments.positional.empty()) value_error("selectattr/rejectattr need an attribute name");
  bool has_test = arguments.positional.size() > skip;
  std::string test = has_test ? to_string(arguments.positional[skip]) : "";
  CallArguments test_arguments = rest_of(arguments, skip + 1);
  Json kept = Json::array();
  for (const Value& item : iterate(input)) {
    Value subject = by_attribute ? attribute_path(item, arguments.positional[0]) : item;
    if ((has_test ? apply_test(test, subject, test_arguments) : is_truthy(subject)) == keep)
      kept.push_back(item.data());
  }
  return Value(std::move(kept));
}

// map(attribute='x', default=...) or map('filter', arguments...).
Value map_items(const Value& input, const CallArguments& arguments, const RenderLimits& limits) {
  const Value* attribute = arguments.find(SIZE_MAX, "attribute");
  const Value* fallback = arguments.find(SIZE_MAX, "default");
  if (!attribute && arguments.positional.empty()) value_error("map needs attribute=... or a filter name");
  Json mapped = Json::array();
  for (const Value& item : iterate(input)) {
    if (!attribute) {
      mapped.push_back(apply_filter(to_string(arguments.positional[0]), item, rest_of(arguments, 1), limits).data());
      continue;
    }
    Value value = attribute_path(item, *attribute);
    mapped.push_back((value.is_undefined() && fallback ? *fallback : value).data());
  }
  return Value(std::move(mapped));
}

// int(default=0, base=10) and float(default=0.0): numbers and numeric strings convert, the rest is the default.
Value number_filter(const Value& input, const CallArguments& arguments, bool integer) {
  Value fallback = arguments.get(0, "default", Value(integer ? Json(0) : Json(0.0)));
  if (!input.is_data()) return fallback;
  const Json& data = input.data();
  if (is_integer(data) && integer) return Value(Json(to_integer(data)));
  double number = 0;
  if (is_numeric(data)) {
    number = to_double(data);
  } else if (data.is_string()) {
    std::string text = strip(data.get_ref<const std::string&>(), nullptr, true, true);
    size_t used = 0;
    try {
      int base = integer ? static_cast<int>(to_integer(arguments.get(1, "base", Value(Json(10))).data())) : 0;
      if (int64_t parsed = integer ? std::stoll(text, &used, base) : 0; integer && used == text.size())
        return Value(Json(parsed));
      number = std::stod(text, &used);
    } catch (const std::logic_error&) {
      return fallback;
    }
    if (used != text.size()) return fallback;
  } else {
    return fallback;
  }
  if (!integer) return Value(Json(number));
  return std::isfinite(number) && std::fabs(number) < 9.2e18 ? Value(Json(static_cast<int64_t>(number))) : fallback;
}

// Hugging Face's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value tojson_filter(const Value& input, const CallArguments& arguments, const RenderLimits& limits) {
  JsonStyle style;
  if (is_truthy(arguments.get(0, "ensure_ascii", Value(Json(false)))))
    value_error("tojson(ensure_ascii=True) is not supported");
  Value indent = arguments.get(1, "indent", Value(Json(nullptr)));
  if (indent.data().is_string())
    style.indent = indent.data().get<std::string>();
  else if (!indent.data().is_null())
    style.indent = std::string(size_t(std::max<int64_t>(0, to_integer(indent.data()))), ' ');
  if (style.indent) style.item_separator = ",";
  if (const Value* separators = arguments.find(2, "separators"); separators && !separators->data().is_null()) {
    const Json& pair = separators->data();
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
      value_error("tojson separators must be a pair of strings");
    style.item_separator = pair[0].get<std::string>();
    style.key_separator = pair[1].get<std::string>();
  }
  style.sort_keys = is_truthy(arguments.get(3, "sort_keys", Value(Json(false))));
  return text_value(to_json_text(input.data(), style, limits.max_output_bytes));
}

Value length_of(const Value& input) {
  if (input.is_undefined()) return Value(Json(0));
  const Json& data = input.data();
  if (data.is_string()) return Value(Json(code_points(data.get_ref<const std::string&>()).size()));
  if (!data.is_structured()) value_error("object of type '{}' has no len()", type_name(input));
  return Value(Json(data.size()));
}

Value items_of(const Value& dict) {
  Json pairs = Json::array();
  if (dict.is_undefined()) return Value(std::move(pairs));
  if (!dict.data().is_object()) value_error("can only get item pairs from a mapping, not a {}", type_name(dict));
  for (const auto& [key, member] : dict.data().items()) pairs.push_back(Json::array({key, member}));
  return Value(std::move(pairs));
}

// Jinja2's indent(width=4, first=False, blank=False): indents every line after the first.
std::string indent(const std::string& text, const CallArguments& a) {
  Value width = a.get(0, "width", Value(Json(4)));
  std::string pad = width.data().is_string() ? width.data().get<std::string>()
                                             : std::string(size_t(std::max<int64_t>(0, to_integer(width.data()))), ' ');
  bool blank = is_truthy(a.get(2, "blank", Value(Json(false))));
  std::string out = is_truthy(a.get(1, "first", Value(Json(false)))) ? pad : "";
  size_t start = 0;
  for (size_t newline; (newline = text.find('\n', start)) != std::string::npos; start = newline + 1) {
    out.append(text, start, newline + 1 - start);
    if (blank || (newline + 1 < text.size() && text[newline + 1] != '\n')) out += pad;
  }
  return out.append(text, start);
}

// Jinja2's sort(reverse=False, case_sensitive=False, attribute=None), a stable sort.
Value sort_items(const Value& input, const CallArguments& a) {
  std::vector<Value> items = iterate(input);
  const Value* attribute = a.find(2, "attribute");
  bool case_sensitive = is_truthy(a.get(1, "case_sensitive", Value(Json(false))));
  auto key = [&](const Value& item) {
    Value k = attribute ? attribute_path(item, *attribute) : item;
    return !case_sensitive && k.is_data() && k.data().is_string() ? Value(Json(lower(k.data().get<std::string>()))) : k;
  };
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) keyed.emplace_back(key(item), item);
  bool reverse = is_truthy(a.get(0, "reverse", Value(Json(false))));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less(y.first, x.first) : less(x.first, y.first);
  });
  Json sorted = Json::array();
  for (const auto& [k, item] : keyed) sorted.push_back(item.data());
  return Value(std::move(sorted));
}

// Each filter's parameters in order; the arguments are checked against them before it runs.
// map and the select family take a test or filter name and its arguments (checked by those).
const std::unordered_map<std::string_view, std::vector<std::string_view>>& filter_parameters() {
  // clang-format off
  static const std::unordered_map<std::string_view, std::vector<std::string_view>> table = {
      {"trim", {"chars"}}, {"length", {}}, {"count", {}}, {"string", {}}, {"lower", {}}, {"upper", {}},
      {"capitalize", {}}, {"title", {}}, {"first", {}}, {"last", {}}, {"items", {}}, {"list", {}}, {"safe", {}},
      {"reverse", {}}, {"abs", {}}, {"join", {"d", "attribute"}}, {"int", {"default", "base"}},
      {"float", {"default"}}, {"replace", {"old", "new", "count"}}, {"default", {"default_value", "boolean"}},
      {"d", {"default_value", "boolean"}}, {"tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}},
      {"indent", {"width", "first", "blank"}}, {"sort", {"reverse", "case_sensitive", "attribute"}},
      {"map", {}}, {"select", {}}, {"reject", {}}, {"selectattr", {}}, {"rejectattr", {}}};
  // clang-format on
  return table;
}

bool is_variadic_filter(std::string_view name) {
  return name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr";
}

Value filter(std::string_view name, const Value& input, const CallArguments& a, const RenderLimits& limits) {
  if (name == "trim") return text_value(strip(to_string(input), a.find(0, "chars"), true, true));
  if (name == "length" || name == "count") return length_of(input);
  if (name == "tojson") return tojson_filter(input, a, limits);
  if (name == "string") return text_value(to_string(input));
  if (name == "lower") return text_value(lower(to_string(input)));
  if (name == "upper") return text_value(upper(to_string(input)));
  if (name == "capitalize") return text_value(change_case(to_string(input), Case::capitalize));
  if (name == "title") return text_value(change_case(to_string(input), Case::jinja_title));
  if (name == "safe") return input;
  if (name == "int" || name == "float") return number_filter(input, a, name == "int");
  if (name == "items") return items_of(input);
  if (name == "list") return Value(to_list(iterate(input)));
  if (name == "reverse") return get_slice(input, {}, {}, Value(Json(-1)));
  if (name == "indent") return text_value(indent(to_string(input), a));
  if (name == "sort") return sort_items(input, a);
  if (name == "map") return map_items(input, a, limits);
  if (name == "select" || name == "reject") return select_items(input, a, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select_items(input, a, true, name == "selectattr");
  if (name == "abs")
    return is_integer(input.data()) && to_integer(input.data()) < 0
               ? integer_arithmetic("-", 0, to_integer(input.data()))
               : Value(is_integer(input.data()) ? input.data() : Json(std::fabs(to_double(input.data()))));
  if (name == "default" || name == "d") {
    bool replace = input.is_undefined() || (is_truthy(a.get(1, "boolean", Value(Json(false)))) && !is_truthy(input));
    return replace ? a.get(0, "default_value", text_value("")) : input;
  }
  if (name == "first" || name == "last") {
    std::vector<Value> items = iterate(input);
    if (items.empty()) return Value::undefined(fmt::format("{}() of an empty sequence", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    std::vector<Value> items = iterate(input);
    if (const Value* attribute = a.find(1, "attribute"))
      for (Value& item : items) item = attribute_path(item, *attribute);
    return text_value(join(items, to_string(a.get(0, "d", text_value(""))), limits));
  }
  // replace
  Value count = a.get(2, "count", Value(Json(nullptr)));
  return text_value(replace(to_string(input), to_string(a.get(0, "old", {})), to_string(a.get(1, "new", {})),
                            count.data().is_null() ? -1 : to_integer(count.data()), limits));
}

// Tests and how many arguments each takes (besides the tested value).
const std::unordered_map<std::string_view, int>& test_arities() {
  // clang-format off
  static const std::unordered_map<std::string_view, int> table = {
      {"defined", 0}, {"undefined", 0}, {"none", 0}, {"string", 0}, {"mapping", 0}, {"iterable", 0},
      {"sequence", 0}, {"number", 0}, {"integer", 0}, {"float", 0}, {"boolean", 0}, {"true", 0}, {"false", 0},
      {"callable", 0}, {"odd", 0}, {"even", 0}, {"lower", 0}, {"upper", 0}, {"divisibleby", 1}, {"eq", 1},
      {"equalto", 1}, {"==", 1}, {"ne", 1}, {"!=", 1}, {"lt", 1}, {"lessthan", 1}, {"<", 1}, {"le", 1},
      {"<=", 1}, {"gt", 1}, {"greaterthan", 1}, {">", 1}, {"ge", 1}, {">=", 1}, {"in", 1}};
  // clang-format on
  return table;
}

bool test(std::string_view name, const Value& v, const Value& other) {
  const Json* data = v.is_data() ? &v.data() : nullptr;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "callable") return v.as_function() != nullptr;
  if (name == "iterable") return v.is_undefined() || (data && (data->is_string() || data->is_structured()));
  if (name == "sequence") return data && (data->is_string() || data->is_structured());
  if (name == "none") return data && data->is_null();
  if (name == "string") return data && data->is_string();
  if (name == "mapping") return data && data->is_object();
  if (name == "number") return data && is_numeric(*data);
  if (name == "integer") return data && data->is_number_integer();
  if (name == "float") return data && data->is_number_float();
  if (name == "boolean") return data && data->is_boolean();
  if (name == "true" || name == "false") return data && data->is_boolean() && data->get<bool>() == (name == "true");
  if (name == "odd" || name == "even") return (to_integer(v.data()) % 2 != 0) == (name == "odd");
  if (name == "lower" || name == "upper") {  // Python's islower()/isupper(): cased letters, all of one case
    std::string text = to_string(v);
    return lower(text) != upper(text) && text == (name == "lower" ? lower(text) : upper(text));
  }
  if (name == "divisibleby") {
    if (to_integer(other.data()) == 0) value_error("divisibleby 0");
    return to_integer(v.data()) % to_integer(other.data()) == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, other);
  if (name == "ne" || name == "!=") return !equal(v, other);
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, other);
  if (name == "gt" || name == "greaterthan" || name == ">") return less(other, v);
  if (name == "le" || name == "<=") return !less(other, v);
  if (name == "ge" || name == ">=") return !less(v, other);
  return contains(other, v);  // in
}

std::optional<Value> string_method(const std::string& text, std::string_view name, const CallArguments& a,
                                   const RenderLimits& limits) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    a.expect(name, {"chars"});
    return text_value(strip(text, a.find(0, "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    a.expect(name, {"prefix"});
    Value prefix = a.get(0, "prefix", {});
    auto matches = [&](const Json& affix) {
      if (!affix.is_string()) value_error("{} needs a string or a list of strings", name);
      const std::string& s = affix.get_ref<const std::string&>();
      return name == "startswith" ? text.starts_with(s) : text.ends_with(s);
    };
    const Json& wanted = prefix.data();
    return bool_value(wanted.is_array() ? std::any_of(wanted.begin(), wanted.end(), matches) : matches(wanted));
  }
  if (name == "split") {
    a.expect(name, {"sep", "maxsplit"});
    return Value(
        split(text, a.get(0, "sep", Value(Json(nullptr))), to_integer(a.get(1, "maxsplit", Value(Json(-1))).data())));
  }
  if (name == "replace") {
    a.expect(name, {"old", "new", "count"});
    return text_value(replace(text, to_string(a.get(0, "old", {})), to_string(a.get(1, "new", {})),
                              to_integer(a.get(2, "count", Value(Json(-1))).data()), limits));
  }
  if (name == "join") {
    a.expect(name, {"iterable"});
    return text_value(join(iterate(a.get(0, "iterable", {})), text, limits));
  }
  if (name != "upper" && name != "lower" && name != "title" && name != "capitalize") return std::nullopt;
  a.expect(name, {});
  if (name == "title") return text_value(change_case(text, Case::python_title));
  if (name == "capitalize") return text_value(change_case(text, Case::capitalize));
  return text_value(name == "upper" ? upper(text) : lower(text));
}

std::optional<Value> dict_method(const Value& dict, std::string_view name, const CallArguments& a) {
  if (name == "get") {
    a.expect(name, {"key", "default"});
    Value found = get_item(dict, a.get(0, "key", {}));
    return found.is_undefined() ? a.get(1, "default", Value(Json(nullptr))) : found;
  }
  if (name != "items" && name != "keys" && name != "values") return std::nullopt;
  a.expect(name, {});
  if (name == "items") return items_of(dict);
  Json list = Json::array();
  for (const auto& [key, member] : dict.data().items()) list.push_back(name == "keys" ? Json(key) : member);
  return Value(std::move(list));
}

Value make_function(std::string name, std::function<Value(const CallArguments&)> call) {
  return Value(std::make_shared<const Function>(Function{std::move(name), std::move(call)}));
}

}  // namespace

Value apply_operator(std::string_view op, const Value& a, const Value& b, const RenderLimits& limits) {
  Value result;
  if (op == "~") {
    result = text_value(to_string(a) + to_string(b));
  } else if (op == "in") {
    result = bool_value(contains(b, a));
  } else {
    const Json& x = a.data();
    const Json& y = b.data();
    if (is_numeric(x) && is_numeric(y)) {
      result = is_integer(x) && is_integer(y) && op != "/" ? integer_arithmetic(op, to_integer(x), to_integer(y))
                                                           : float_arithmetic(op, to_double(x), to_double(y));
    } else if (op == "+" && x.is_string() && y.is_string()) {
      result = text_value(x.get<std::string>() + y.get<std::string>());
    } else if (op == "+" && x.is_array() && y.is_array()) {
      Json joined = x;
      joined.insert(joined.end(), y.begin(), y.end());
      result = Value(std::move(joined));
    } else if (op == "*" && (x.is_string() || x.is_array()) && is_integer(y)) {
      result = repeat(x, to_integer(y), limits);
    } else if (op == "*" && is_integer(x) && (y.is_string() || y.is_array())) {
      result = repeat(y, to_integer(x), limits);
    } else {
      value_error("unsupported operand types for {}: '{}' and '{}'", op, type_name(a), type_name(b));
    }
  }
  check_size(approximate_bytes(result.data()), limits);
  return result;
}

std::vector<Value> iterate(const Value& value) {
  std::vector<Value> items;
  if (value.is_undefined()) return items;
  if (!value.is_data()) value_error("'{}' object is not iterable", type_name(value));
  const Json& data = value.data();
  if (data.is_array()) {
    for (const Json& item : data) items.push_back(value.part(item));
  } else if (data.is_object()) {
    for (const auto& [key, member] : data.items()) items.emplace_back(Json(key));
  } else if (data.is_string()) {
    for (std::string_view point : code_points(data.get_ref<const std::string&>()))
      items.emplace_back(Json(std::string(point)));
  } else {
    value_error("'{}' object is not iterable", type_name(value));
  }
  return items;
}

Value apply_filter(std::string_view name, const Value& input, const CallArguments& arguments,
                   const RenderLimits& limits) {
  auto it = filter_parameters().find(name);
  if (it == filter_parameters().end()) value_error("no filter named '{}'", name);
  if (!is_variadic_filter(name)) arguments.expect(name, it->second);
  return filter(name, input, arguments, limits);
}

bool apply_test(std::string_view name, const Value& input, const CallArguments& arguments) {
  auto it = test_arities().find(name);
  if (it == test_arities().end()) value_error("no test named '{}'", name);
  if (arguments.positional.size() != size_t(it->second) || !arguments.keywords.empty())
    value_error("test '{}' takes {} argument(s)", name, it->second);
  return test(name, input, it->second ? arguments.positional[0] : Value());
}

std::optional<Value> call_method(const Value& object, std::string_view name, const CallArguments& arguments,
                                 const RenderLimits& limits) {
  if (!object.is_data()) return std::nullopt;
  if (object.data().is_string())
    return string_method(object.data().get_ref<const std::string&>(), name, arguments, limits);
  if (object.data().is_object()) return dict_method(object, name, arguments);
  return std::nullopt;
}

std::vector<std::pair<std::string, Value>> global_functions(const RenderLimits& limits) {
  std::vector<std::pair<std::string, Value>> functions;
  auto add = [&](std::string name, std::function<Value(const CallArguments&)> call) {
    functions.emplace_back(name, make_function(name, std::move(call)));
  };
  add("raise_exception", [](const CallArguments& a) -> Value {
    a.expect("raise_exception", {"message"});
    throw TemplateRaisedError(to_string(a.get(0, "message", {})));
  });
  add("namespace", [](const CallArguments& a) {
    auto ns = std::make_shared<Namespace>();
    if (a.positional.size() > 1) value_error("namespace() takes at most one positional argument (a dict)");
    if (!a.positional.empty())
      for (const auto& [key, member] : a.positional[0].data().items()) ns->attributes[key] = Value(member);
    for (const auto& [key, value] : a.keywords) ns->attributes[key] = value;
    return Value(std::move(ns));
  });
  add("dict", [](const CallArguments& a) {
    if (!a.positional.empty()) value_error("dict() takes keyword arguments only");
    Json dict = Json::object();
    for (const auto& [key, value] : a.keywords) dict[key] = value.data();
    return Value(std::move(dict));
  });
  add("range", [max_items = limits.max_loop_iterations](const CallArguments& a) {
    if (a.positional.empty() || a.positional.size() > 3 || !a.keywords.empty())
      value_error("range() takes 1 to 3 integer arguments");
    std::vector<int64_t> bounds;
    for (const Value& v : a.positional) bounds.push_back(to_integer(v.data()));
    int64_t start = bounds.size() > 1 ? bounds[0] : 0, stop = bounds.size() > 1 ? bounds[1] : bounds[0];
    int64_t step = bounds.size() > 2 ? bounds[2] : 1;
    if (step == 0) value_error("range() arg 3 must not be zero");
    Json list = Json::array();
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      if (list.size() >= max_items) value_error("range() of more than {} items", max_items);
      list.push_back(i);
      if (__builtin_add_overflow(i, step, &i)) break;
    }
    return Value(std::move(list));
  });
  add("strftime_now", [](const CallArguments& a) {
    a.expect("strftime_now", {"format"});
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[256];
    size_t length = std::strftime(buffer, sizeof buffer, to_string(a.get(0, "format", {})).c_str(), &local);
    return text_value(std::string(buffer, length));
  });
  return functions;
}

bool is_known_filter(std::string_view name) { return filter_parameters().contains(name); }
bool is_known_test(std::string_view name) { return test_arities().contains(name); }

}  // namespace troupe::jinja
