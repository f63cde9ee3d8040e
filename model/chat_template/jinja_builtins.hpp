#pragma once
// troupe::jinja built-ins: operators, filters, tests, the methods of strings and dicts, and the
// global functions of Hugging Face's chat template environment (namespace, range, dict,
// raise_exception, strftime_now). They behave as Jinja2 3.1 and Python 3 do on the values chat
// templates see; case mappings are utf8proc's one-to-one ones (Python maps 'ß' to 'SS').
// Errors throw ValueError (jinja_value.hpp) except raise_exception, which throws
// TemplateRaisedError. Functions here keep no state between calls.
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/error.hpp"
#include "model/chat_template/jinja_value.hpp"

namespace troupe::jinja {

// What `raise_exception(message)` throws: what() is exactly the template's message.
struct TemplateRaisedError : Error {
  using Error::Error;
};

// `a op b` for + - * / // % ** ~ and `in` (`not in` is `not (a in b)`).
Value apply_operator(std::string_view op, const Value& a, const Value& b, const RenderLimits& limits);

// What `for x in value` visits: list items, dict keys, the characters of a string; nothing for
// undefined (as Jinja2's Undefined); other values fail.
std::vector<Value> iterate(const Value& value);

// `input | name(arguments)`; an unknown filter fails.
Value apply_filter(std::string_view name, const Value& input, const CallArguments& arguments,
                   const RenderLimits& limits);

// `input is name(arguments)`; an unknown test fails.
bool apply_test(std::string_view name, const Value& input, const CallArguments& arguments);

// `object.name(arguments)` for the methods of strings (strip, split, startswith, ...) and dicts
// (items, keys, values, get); nothing when `object` has no built-in method of that name.
std::optional<Value> call_method(const Value& object, std::string_view name, const CallArguments& arguments,
                                 const RenderLimits& limits);

// Whether a filter or test of that name exists (the parser rejects unknown ones, as Jinja2 does).
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// The functions every template may call, by name.
std::vector<std::pair<std::string, Value>> global_functions(const RenderLimits& limits);

}  // namespace troupe::jinja
