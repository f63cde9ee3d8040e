#include "model/chat_template/jinja_renderer.hpp"

#include <unordered_map>

#include "kernels/error.hpp"
#include "model/chat_template/jinja_builtins.hpp"

namespace troupe::jinja {
namespace {

using Kind = Expression::Kind;

struct Scope {
  const Scope* parent = nullptr;
  std::unordered_map<std::string, Value> variables;

  const Value* find(const std::string& name) const {
    for (const Scope* scope = this; scope; scope = scope->parent)
      if (auto it = scope->variables.find(name); it != scope->variables.end()) return &it->second;
    return nullptr;
  }
};

// What a statement asks of the loop around it.
enum class Flow { normal, break_loop, continue_loop };

class Renderer {
 public:
  Renderer(const Template& tmpl, const RenderLimits& limits) : template_(tmpl), limits_(limits) {}

  std::string run(const std::map<std::string, Value>& variables) {
    Scope root;
    for (auto& [name, function] : global_functions(limits_)) root.variables[name] = function;
    for (const auto& [name, value] : variables) root.variables[name] = value;
    root_ = &root;
    std::string out;
    render_nodes(template_.body, root, out);
    return out;
  }

 private:
  // Counts nesting (statements, expressions, macro calls) so that no template overflows the stack.
  struct DepthGuard {
    DepthGuard(Renderer& renderer, int line) : renderer_(renderer) {
      if (++renderer_.depth_ > renderer_.limits_.max_depth)
        renderer_.fail_at(line, fmt::format("nesting deeper than {} (recursive macro?)", renderer_.limits_.max_depth));
    }
    ~DepthGuard() { --renderer_.depth_; }
    Renderer& renderer_;
  };

  [[noreturn]] void fail_at(int line, std::string_view message) const {
    fail("{} line {}: {}", template_.origin, line, message);
  }

  void append(std::string& out, std::string_view text, int line) const {
    out += text;
    if (out.size() > limits_.max_output_bytes)
      fail_at(line, fmt::format("rendered output exceeds {} bytes", limits_.max_output_bytes));
  }

  void count_iteration(int line) {
    if (++iterations_ > limits_.max_loop_iterations)
      fail_at(line, fmt::format("more than {} loop iterations", limits_.max_loop_iterations));
  }

  Flow render_nodes(const NodeList& nodes, Scope& scope, std::string& out) {
    for (const auto& node : nodes) {
      DepthGuard guard(*this, node->line);
      Flow flow;
      try {
        flow = render_node(*node, scope, out);
      } catch (const ValueError& error) {
        fail_at(node->line, error.what());
      }
      if (flow != Flow::normal) return flow;
    }
    return Flow::normal;
  }

  Flow render_node(const Node& node, Scope& scope, std::string& out) {
    switch (node.kind) {
      case Node::Kind::text:
        append(out, node.text, node.line);
        break;
      case Node::Kind::output:
        append(out, to_string(evaluate(*node.expression, scope)), node.line);
        break;
      case Node::Kind::if_chain:
        for (const auto& [condition, body] : node.branches)
          if (!condition || is_truthy(evaluate(*condition, scope))) return render_nodes(body, scope, out);
        break;
      case Node::Kind::for_loop:
        render_for(node, scope, out);
        break;
      case Node::Kind::set:
        assign(node, evaluate(*node.expression, scope), scope);
        break;
      case Node::Kind::set_block: {
        std::string text;
        render_nodes(node.body, scope, text);
        assign(node, Value(Json(std::move(text))), scope);
        break;
      }
      case Node::Kind::macro: {
        auto call = [this, &node](const CallArguments& arguments) { return call_macro(node, arguments); };
        scope.variables[node.text] = Value(std::make_shared<const Function>(Function{node.text, call}));
        break;
      }
      case Node::Kind::filter_block: {
        Scope inner{&scope, {}};
        std::string text;
        render_nodes(node.body, scope, text);
        inner.variables[std::string(kFilterInput)] = Value(Json(std::move(text)));
        append(out, to_string(evaluate(*node.expression, inner)), node.line);
        break;
      }
      case Node::Kind::break_loop:
        return Flow::break_loop;
      case Node::Kind::continue_loop:
        return Flow::continue_loop;
    }
    return Flow::normal;
  }

  // Binds for/set targets: one name takes the value, several unpack a list (`for k, v in ...`).
  static void bind(const std::vector<std::string>& targets, const Value& value, Scope& scope) {
    if (targets.size() == 1) return void(scope.variables[targets[0]] = value);
    const Json& items = value.data();
    if (!items.is_array() || items.size() != targets.size())
      value_error("cannot unpack a {} into {} names", type_name(value), targets.size());
    for (size_t i = 0; i < targets.size(); ++i) scope.variables[targets[i]] = value.part(items[i]);
  }

  static void assign(const Node& node, const Value& value, Scope& scope) {
    if (node.attribute.empty()) return bind(node.targets, value, scope);
    const Value* target = scope.find(node.targets[0]);
    Namespace* ns = target ? target->as_namespace() : nullptr;
    if (!ns)
      value_error("cannot set '{}.{}': '{}' is not a namespace", node.targets[0], node.attribute, node.targets[0]);
    ns->attributes[node.attribute] = value;
  }

  void render_for(const Node& node, Scope& scope, std::string& out) {
    std::vector<Value> items = iterate(evaluate(*node.expression, scope));
    if (node.condition) {  // `for x in xs if cond`: loop.length counts the kept items
      std::vector<Value> kept;
      for (Value& item : items) {
        count_iteration(node.line);
        Scope filter_scope{&scope, {}};
        bind(node.targets, item, filter_scope);
        if (is_truthy(evaluate(*node.condition, filter_scope))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      render_nodes(node.else_body, scope, out);
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      count_iteration(node.line);
      Scope body_scope{&scope, {}};
      bind(node.targets, items[i], body_scope);
      body_scope.variables["loop"] = loop_variable(items, i);
      if (render_nodes(node.body, body_scope, out) == Flow::break_loop) break;
    }
  }

  static Value loop_variable(const std::vector<Value>& items, size_t i) {
    auto loop = std::make_shared<Namespace>();
    auto number = [](size_t n) { return Value(Json(n)); };
    size_t length = items.size();
    loop->attributes = {{"index", number(i + 1)},
                        {"index0", number(i)},
                        {"revindex", number(length - i)},
                        {"revindex0", number(length - i - 1)},
                        {"first", Value(Json(i == 0))},
                        {"last", Value(Json(i + 1 == length))},
                        {"length", number(length)},
                        {"depth", number(1)},
                        {"depth0", number(0)}};
    loop->attributes["previtem"] = i > 0 ? items[i - 1] : Value::undefined("loop.previtem on the first iteration");
    loop->attributes["nextitem"] =
        i + 1 < length ? items[i + 1] : Value::undefined("loop.nextitem on the last iteration");
    auto cycle = [i](const CallArguments& arguments) {
      if (arguments.positional.empty()) value_error("loop.cycle() needs at least one value");
      return arguments.positional[i % arguments.positional.size()];
    };
    loop->attributes["cycle"] = Value(std::make_shared<const Function>(Function{"cycle", cycle}));
    return Value(std::move(loop));
  }

  Value call_macro(const Node& macro, const CallArguments& arguments) {
    DepthGuard guard(*this, macro.line);
    if (arguments.positional.size() > macro.parameters.size())
      value_error("macro '{}' takes {} arguments ({} given)", macro.text, macro.parameters.size(),
                  arguments.positional.size());
    for (const auto& [name, value] : arguments.keywords) {
      auto is_name = [&](const auto& parameter) { return parameter.first == name; };
      if (std::none_of(macro.parameters.begin(), macro.parameters.end(), is_name))
        value_error("macro '{}' has no parameter '{}'", macro.text, name);
    }
    Scope scope{root_, {}};
    for (size_t i = 0; i < macro.parameters.size(); ++i) {
      const auto& [name, fallback] = macro.parameters[i];
      const Value* given = arguments.find(i, name);
      scope.variables[name] = given      ? *given
                              : fallback ? evaluate(*fallback, scope)
                                         : Value::undefined("macro parameter '" + name + "' was not given");
    }
    std::string out;
    render_nodes(macro.body, scope, out);
    return Value(Json(std::move(out)));
  }

  Value evaluate(const Expression& expression, const Scope& scope) {
    DepthGuard guard(*this, expression.line);
    try {
      return evaluate_unguarded(expression, scope);
    } catch (const ValueError& error) {
      fail_at(expression.line, error.what());
    } catch (const nlohmann::json::exception& error) {
      fail_at(expression.line, error.what());
    }
  }

  CallArguments evaluate_arguments(const Arguments& arguments, const Scope& scope) {
    CallArguments values;
    for (const auto& argument : arguments.positional) values.positional.push_back(evaluate(*argument, scope));
    for (const auto& [name, argument] : arguments.keywords)
      values.keywords.emplace_back(name, evaluate(*argument, scope));
    return values;
  }

  Value evaluate_unguarded(const Expression& e, const Scope& scope) {
    auto operand = [&](size_t i) { return e.operands[i] ? evaluate(*e.operands[i], scope) : Value(); };
    switch (e.kind) {
      case Kind::literal:
        return e.constant;
      case Kind::variable: {
        const Value* value = scope.find(e.name);
        return value ? *value : Value::undefined("'" + e.name + "' is undefined");
      }
      case Kind::list: {
        Json list = Json::array();
        for (size_t i = 0; i < e.operands.size(); ++i) list.push_back(operand(i).data());
        return Value(std::move(list));
      }
      case Kind::dict: {
        Json dict = Json::object();
        for (size_t i = 0; i + 1 < e.operands.size(); i += 2) {
          Value key = operand(i);
          dict[key.data().is_string() ? key.data().get<std::string>() : to_string(key)] = operand(i + 1).data();
        }
        return Value(std::move(dict));
      }
      case Kind::attribute:
        return get_attribute(operand(0), e.name);
      case Kind::item:
        return get_item(operand(0), operand(1));
      case Kind::slice:
        return get_slice(operand(0), operand(1), operand(2), operand(3));
      case Kind::unary: {
        Value value = operand(0);
        if (e.name == "not") return Value(Json(!is_truthy(value)));
        if (!value.data().is_number() && !value.data().is_boolean())
          value_error("bad operand type for unary {}: '{}'", e.name, type_name(value));
        return e.name == "-" ? apply_operator("*", value, Value(Json(-1)), limits_) : value;
      }
      case Kind::binary: {
        Value left = operand(0);
        if (e.name == "and") return is_truthy(left) ? operand(1) : left;
        if (e.name == "or") return is_truthy(left) ? left : operand(1);
        return apply_operator(e.name, left, operand(1), limits_);
      }
      case Kind::compare: {
        Value left = operand(0);
        for (size_t i = 0; i < e.comparators.size(); ++i) {
          Value right = operand(i + 1);
          if (!compare(e.comparators[i], left, right)) return Value(Json(false));
          left = std::move(right);
        }
        return Value(Json(true));
      }
      case Kind::conditional:
        if (is_truthy(operand(0))) return operand(1);
        return e.operands[2] ? operand(2) : Value::undefined("an inline if without else whose condition was false");
      case Kind::call:
        return evaluate_call(e, scope);
      case Kind::filter:
        return apply_filter(e.name, operand(0), evaluate_arguments(e.arguments, scope), limits_);
      case Kind::test:
        return Value(Json(apply_test(e.name, operand(0), evaluate_arguments(e.arguments, scope)) != e.negated));
    }
    value_error("unknown expression");
  }

  bool compare(const std::string& op, const Value& left, const Value& right) {
    if (op == "==") return equal(left, right);
    if (op == "!=") return !equal(left, right);
    if (op == "<") return less(left, right);
    if (op == ">") return less(right, left);
    if (op == "<=") return !less(right, left);
    if (op == ">=") return !less(left, right);
    bool found = is_truthy(apply_operator("in", left, right, limits_));
    return op == "in" ? found : !found;
  }

  // A call of a method (`text.strip()`, `d.items()`), a macro or a global function.
  Value evaluate_call(const Expression& e, const Scope& scope) {
    const Expression& callee = *e.operands[0];
    if (callee.kind == Kind::attribute) {
      Value object = evaluate(*callee.operands[0], scope);
      CallArguments arguments = evaluate_arguments(e.arguments, scope);
      if (auto result = call_method(object, callee.name, arguments, limits_)) return *result;
      return call(get_attribute(object, callee.name), arguments);
    }
    Value target = evaluate(callee, scope);
    return call(target, evaluate_arguments(e.arguments, scope));
  }

  static Value call(const Value& target, const CallArguments& arguments) {
    if (const Function* function = target.as_function()) return function->call(arguments);
    if (target.is_undefined()) throw ValueError(target.undefined_reason());
    value_error("'{}' object is not callable", type_name(target));
  }

  const Template& template_;
  const RenderLimits& limits_;
  const Scope* root_ = nullptr;
  int depth_ = 0;
  size_t iterations_ = 0;
};

}  // namespace

std::string render(const Template& tmpl, const std::map<std::string, Value>& variables, const RenderLimits& limits) {
  return Renderer(tmpl, limits).run(variables);
}

}  // namespace troupe::jinja
