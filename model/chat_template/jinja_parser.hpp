#pragma once
// troupe::jinja parser: template source -> syntax tree (statements holding expressions), with
// Jinja2's grammar and operator precedence (lowest first): `x if c else y`, or, and, not,
// comparisons (== != < <= > >= in, not in; chained as in Python), + -, ~, * / // %, **, unary - +,
// then filters (`|f(...)`), tests (`is [not] t`), and postfix `.attr`, `[i]`, `[a:b:c]`, `(...)`.
// Statements: if/elif/else, for (with `k, v` targets, an `if` filter, else, break/continue), set
// (`x = ...`, `ns.attr = ...`, `a, b = ...`, and `{% set x %}...{% endset %}`), macro, filter and
// Hugging Face's `generation` block (rendered as its body).
// Not supported (a parse error names them): include/import/extends/block, call blocks,
// recursive loops, `*args` in calls, raw blocks, line statements.
//
// Ownership: a Template owns its whole tree; it is immutable after parse_template() and may be
// rendered from many threads at once. Errors throw troupe::Error "ORIGIN line N: ...", and
// unknown filters and tests are parse errors, as in Jinja2. Nesting deeper than kMaxParseDepth
// (brackets, operators, blocks) is an error rather than a stack overflow.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template/jinja_value.hpp"

namespace troupe::jinja {

inline constexpr int kMaxParseDepth = 200;

struct Expression;
using ExpressionPtr = std::unique_ptr<Expression>;

struct Arguments {
  std::vector<ExpressionPtr> positional;
  std::vector<std::pair<std::string, ExpressionPtr>> keywords;
};

struct Expression {
  enum class Kind {
    literal,      // constant
    variable,     // name
    list,         // [operands...] (also tuples)
    dict,         // {operands[0]: operands[1], operands[2]: operands[3], ...}
    attribute,    // operands[0].name
    item,         // operands[0][operands[1]]
    slice,        // operands[0][operands[1]:operands[2]:operands[3]]; a missing bound is null
    unary,        // name operands[0], name is "not", "-" or "+"
    binary,       // operands[0] name operands[1]: or and + - ~ * / // % **
    compare,      // operands[0] comparators[0] operands[1] comparators[1] operands[2] ...
    conditional,  // operands[1] if operands[0] else operands[2] (null: undefined)
    call,         // operands[0](arguments)
    filter,       // operands[0] | name(arguments)
    test,         // operands[0] is [not] name(arguments)
  };
  Kind kind;
  int line;
  std::string name;
  Value constant;  // literal (shared by every render)
  std::vector<ExpressionPtr> operands;
  std::vector<std::string> comparators;  // compare: == != < <= > >= in "not in"
  Arguments arguments;
  bool negated = false;  // test: `is not`
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind {
    text,           // text
    output,         // {{ expression }}
    if_chain,       // branches: (condition, body) for if, each elif, and else (null condition)
    for_loop,       // for targets in expression [if condition]: body [else: else_body]
    set,            // set targets = expression; with `attribute`: set targets[0].attribute = expression
    set_block,      // set targets[0]: the rendered body
    macro,          // macro name(parameters): body
    filter_block,   // filter: `expression` applies the filters to the variable kFilterInput, the rendered body
    break_loop,     // break
    continue_loop,  // continue
  };
  Kind kind;
  int line;
  std::string text;  // text: the text; macro: its name
  ExpressionPtr expression;
  ExpressionPtr condition;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<std::pair<ExpressionPtr, NodeList>> branches;
  NodeList body;
  NodeList else_body;
  std::vector<std::pair<std::string, ExpressionPtr>> parameters;  // macro: names and defaults (null: none)
};

// The name a {% filter %} block's body is bound to while its filters run (not a valid identifier).
inline constexpr std::string_view kFilterInput = "(filter block body)";

struct Template {
  std::string origin;  // where the source came from, for error messages
  NodeList body;
};

Template parse_template(std::string_view source, std::string origin);

}  // namespace troupe::jinja
