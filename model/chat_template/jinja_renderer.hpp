#pragma once
// troupe::jinja renderer: a parsed Template (jinja_parser.hpp) and its variables -> text.
//
// Scoping is Jinja2's: each iteration of a for loop and each macro call has its own scope, so a
// `set` inside one is gone after it (templates carry state out of loops with namespace());
// `if` opens no scope. A macro sees the template's top-level variables and its arguments, not its
// caller's locals. `loop` has index, index0, revindex, revindex0, first, last, length, previtem,
// nextitem, depth, depth0 and cycle(...).
//
// Errors: a failing operation throws troupe::Error "ORIGIN line N: message"; raise_exception()
// throws TemplateRaisedError (jinja_builtins.hpp) whose message is exactly the template's. Every
// render is bounded by RenderLimits (output size, loop iterations, nesting depth).
// Thread safety: a render keeps its state to itself; many threads may render one Template at once.
#include <map>
#include <string>

#include "model/chat_template/jinja_parser.hpp"
#include "model/chat_template/jinja_value.hpp"

namespace troupe::jinja {

// Renders `tmpl` with `variables` (and the global functions of jinja_builtins.hpp) in scope.
std::string render(const Template& tmpl, const std::map<std::string, Value>& variables,
                   const RenderLimits& limits = {});

}  // namespace troupe::jinja
