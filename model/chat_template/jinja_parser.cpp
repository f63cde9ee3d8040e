#include "model/chat_template/jinja_parser.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "model/chat_template/jinja_builtins.hpp"
#include "model/chat_template/jinja_lexer.hpp"

namespace troupe::jinja {
namespace {

using Kind = Expression::Kind;
using TokenKind = Token::Kind;

template <typename... Operands>
ExpressionPtr make(Kind kind, int line, std::string name, Operands&&... operands) {
  auto expression = std::make_unique<Expression>();
  expression->kind = kind;
  expression->line = line;
  expression->name = std::move(name);
  (expression->operands.push_back(std::forward<Operands>(operands)), ...);
  return expression;
}

ExpressionPtr literal(Json value, int line) {
  auto expression = make(Kind::literal, line, "");
  expression->constant = Value(std::move(value));
  return expression;
}

std::unique_ptr<Node> make_node(Node::Kind kind, int line) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->line = line;
  return node;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& origin) : tokens_(std::move(tokens)), origin_(origin) {}

  NodeList parse() { return parse_body({}); }

 private:
  // Counts nesting on entry, so that hostile templates fail instead of overflowing the stack.
  struct DepthGuard {
    explicit DepthGuard(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > kMaxParseDepth) parser_.error(parser_.peek(), "the template nests too deeply");
    }
    ~DepthGuard() { --parser_.depth_; }
    Parser& parser_;
  };

  [[noreturn]] void error(const Token& at, std::string_view message) const {
    fail("{} line {}: {}", origin_, at.line, message);
  }

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::end:
        return "end of template";
      case TokenKind::expression_end:
        return "'}}'";
      case TokenKind::statement_end:
        return "'%}'";
      case TokenKind::string:
        return "string";
      default:
        return "'" + token.text + "'";
    }
  }

  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(position_ + ahead, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& token = peek();
    if (position_ < tokens_.size() - 1) ++position_;
    return token;
  }
  bool at_symbol(std::string_view symbol, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::symbol && peek(ahead).text == symbol;
  }
  bool at_name(std::string_view name, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::name && peek(ahead).text == name;
  }
  bool accept_symbol(std::string_view symbol) { return at_symbol(symbol) && (next(), true); }
  bool accept_name(std::string_view name) { return at_name(name) && (next(), true); }
  void expect_symbol(std::string_view symbol) {
    if (!accept_symbol(symbol)) error(peek(), fmt::format("expected '{}', found {}", symbol, describe(peek())));
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::name) error(peek(), fmt::format("expected a name, found {}", describe(peek())));
    return next().text;
  }
  void expect_statement_end() {
    if (peek().kind != TokenKind::statement_end)
      error(peek(), fmt::format("expected '%}}', found {}", describe(peek())));
    next();
  }

  // Statements up to one of `end_tags`: consumes its `{% name`, leaves the rest of that tag, and
  // keeps the name in ended_by_.
  NodeList parse_body(std::vector<std::string_view> end_tags) {
    DepthGuard guard(*this);
    static const std::vector<std::string_view> statements = {"if",     "for",   "set",      "macro",
                                                             "filter", "break", "continue", "generation"};
    auto expected = [&] {
      std::string list;
      for (auto tag : end_tags) list += (list.empty() ? "" : " or ") + fmt::format("'{{% {} %}}'", tag);
      return list.empty() ? std::string() : ", expected " + list;
    };
    NodeList nodes;
    while (true) {
      const Token& token = next();
      if (token.kind == TokenKind::end) {
        if (end_tags.empty()) return nodes;
        error(token, "unexpected end of template" + expected());
      } else if (token.kind == TokenKind::text) {
        nodes.push_back(make_node(Node::Kind::text, token.line));
        nodes.back()->text = token.text;
      } else if (token.kind == TokenKind::expression_begin) {
        auto node = make_node(Node::Kind::output, token.line);
        node->expression = parse_expression();
        if (peek().kind != TokenKind::expression_end) error(peek(), "expected '}}', found " + describe(peek()));
        next();
        nodes.push_back(std::move(node));
      } else {
        const Token& tag = peek();
        std::string name = expect_name();
        if (std::find(end_tags.begin(), end_tags.end(), name) != end_tags.end()) {
          ended_by_ = name;
          return nodes;
        }
        if (std::find(statements.begin(), statements.end(), name) == statements.end())
          error(tag, fmt::format("unknown or unexpected tag '{}'{}", name, expected()));
        parse_statement(name, tag.line, nodes);
      }
    }
  }

  void parse_statement(const std::string& tag, int line, NodeList& nodes) {
    if (tag == "if") return nodes.push_back(parse_if(line));
    if (tag == "for") return nodes.push_back(parse_for(line));
    if (tag == "set") return nodes.push_back(parse_set(line));
    if (tag == "macro") return nodes.push_back(parse_macro(line));
    if (tag == "filter") return nodes.push_back(parse_filter_block(line));
    if (tag == "generation") {  // Hugging Face's marker of assistant text: rendered as its body
      for (auto& node : parse_block("endgeneration")) nodes.push_back(std::move(node));
      return;
    }
    if (loop_depth_ == 0) error(peek(), fmt::format("'{}' outside of a loop", tag));
    expect_statement_end();
    nodes.push_back(make_node(tag == "break" ? Node::Kind::break_loop : Node::Kind::continue_loop, line));
  }

  // `%}`, the body, and `{% end_tag %}`.
  NodeList parse_block(std::string_view end_tag) {
    expect_statement_end();
    NodeList body = parse_body({end_tag});
    expect_statement_end();
    return body;
  }

  std::unique_ptr<Node> parse_if(int line) {
    auto node = make_node(Node::Kind::if_chain, line);
    std::string tag = "if";
    while (tag != "endif") {
      ExpressionPtr condition = tag == "else" ? nullptr : parse_expression();
      expect_statement_end();
      NodeList body = tag == "else" ? parse_body({"endif"}) : parse_body({"elif", "else", "endif"});
      node->branches.emplace_back(std::move(condition), std::move(body));
      tag = ended_by_;
    }
    expect_statement_end();
    return node;
  }

  std::unique_ptr<Node> parse_for(int line) {
    auto node = make_node(Node::Kind::for_loop, line);
    bool parenthesized = accept_symbol("(");
    do node->targets.push_back(expect_name());
    while (accept_symbol(","));
    if (parenthesized) expect_symbol(")");
    if (!accept_name("in")) error(peek(), "expected 'in' in a for loop, found " + describe(peek()));
    node->expression = parse_or();
    if (accept_name("if")) node->condition = parse_expression();
    if (at_name("recursive")) error(peek(), "recursive loops are not supported");
    expect_statement_end();
    ++loop_depth_;
    node->body = parse_body({"else", "endfor"});
    --loop_depth_;
    if (ended_by_ == "else")
      node->else_body = parse_block("endfor");
    else
      expect_statement_end();
    return node;
  }

  std::unique_ptr<Node> parse_set(int line) {
    auto node = make_node(Node::Kind::set, line);
    node->targets.push_back(expect_name());
    if (accept_symbol(".")) node->attribute = expect_name();
    while (node->attribute.empty() && accept_symbol(",")) node->targets.push_back(expect_name());
    if (accept_symbol("=")) {
      node->expression = parse_expression();
      expect_statement_end();
      return node;
    }
    if (!node->attribute.empty() || node->targets.size() > 1) error(peek(), "expected '=' in a set statement");
    node->kind = Node::Kind::set_block;
    node->body = parse_block("endset");
    return node;
  }

  std::unique_ptr<Node> parse_macro(int line) {
    auto node = make_node(Node::Kind::macro, line);
    node->text = expect_name();
    expect_symbol("(");
    while (!accept_symbol(")")) {
      if (!node->parameters.empty()) expect_symbol(",");
      if (accept_symbol(")")) break;
      std::string parameter = expect_name();
      node->parameters.emplace_back(parameter, accept_symbol("=") ? parse_expression() : nullptr);
    }
    int outer_loop_depth = std::exchange(loop_depth_, 0);
    node->body = parse_block("endmacro");
    loop_depth_ = outer_loop_depth;
    return node;
  }

  std::unique_ptr<Node> parse_filter_block(int line) {
    auto node = make_node(Node::Kind::filter_block, line);
    node->expression = make(Kind::variable, line, std::string(kFilterInput));
    do node->expression = parse_filter(std::move(node->expression));
    while (accept_symbol("|"));
    node->body = parse_block("endfilter");
    return node;
  }

  ExpressionPtr parse_expression() {  // x if condition else y
    DepthGuard guard(*this);
    ExpressionPtr value = parse_or();
    while (at_name("if")) {
      int line = next().line;
      ExpressionPtr condition = parse_or();
      ExpressionPtr otherwise = accept_name("else") ? parse_expression() : nullptr;
      value = make(Kind::conditional, line, "", std::move(condition), std::move(value), std::move(otherwise));
    }
    return value;
  }

  ExpressionPtr parse_or() { return parse_binary({"or"}, &Parser::parse_and); }
  ExpressionPtr parse_and() { return parse_binary({"and"}, &Parser::parse_not); }

  ExpressionPtr parse_not() {
    DepthGuard guard(*this);
    if (at_name("not")) {
      int line = next().line;
      return make(Kind::unary, line, "not", parse_not());
    }
    return parse_compare();
  }

  ExpressionPtr parse_compare() {
    ExpressionPtr first = parse_sum();
    ExpressionPtr chain;
    while (true) {
      std::string comparator;
      static const std::vector<std::string_view> symbols = {"==", "!=", "<", "<=", ">", ">="};
      if (peek().kind == TokenKind::symbol && std::find(symbols.begin(), symbols.end(), peek().text) != symbols.end())
        comparator = next().text;
      else if (accept_name("in"))
        comparator = "in";
      else if (at_name("not") && at_name("in", 1))
        comparator = (next(), next(), "not in");
      else
        break;
      if (!chain) chain = make(Kind::compare, first->line, "", std::move(first));
      chain->comparators.push_back(comparator);
      chain->operands.push_back(parse_sum());
    }
    return chain ? std::move(chain) : std::move(first);
  }

  // Left-associative binary operators of one precedence level: symbols, or the names `or` / `and`.
  template <typename Operand>
  ExpressionPtr parse_binary(std::initializer_list<std::string_view> operators, Operand operand) {
    ExpressionPtr left = (this->*operand)();
    while ((peek().kind == TokenKind::symbol || peek().kind == TokenKind::name) &&
           std::find(operators.begin(), operators.end(), peek().text) != operators.end()) {
      const Token& op = next();
      left = make(Kind::binary, op.line, op.text, std::move(left), (this->*operand)());
    }
    return left;
  }
  ExpressionPtr parse_sum() { return parse_binary({"+", "-"}, &Parser::parse_concat); }
  ExpressionPtr parse_concat() { return parse_binary({"~"}, &Parser::parse_product); }
  ExpressionPtr parse_product() { return parse_binary({"*", "/", "//", "%"}, &Parser::parse_power); }
  ExpressionPtr parse_power() { return parse_binary({"**"}, &Parser::parse_unary_with_filters); }
  ExpressionPtr parse_unary_with_filters() { return parse_unary(true); }

  ExpressionPtr parse_unary(bool with_filters) {
    DepthGuard guard(*this);
    ExpressionPtr node;
    if (at_symbol("-") || at_symbol("+")) {
      const Token& sign = next();
      node = make(Kind::unary, sign.line, sign.text, parse_unary(false));
    } else {
      node = parse_postfix(parse_primary());
    }
    while (with_filters) {
      if (accept_symbol("|")) {
        node = parse_filter(std::move(node));
      } else if (at_name("is")) {
        node = parse_test(std::move(node));
      } else if (at_symbol("(")) {
        node = parse_call(std::move(node));
      } else {
        break;
      }
    }
    return node;
  }

  ExpressionPtr parse_primary() {
    const Token& token = next();
    switch (token.kind) {
      case TokenKind::name:
        if (token.text == "true" || token.text == "True") return literal(true, token.line);
        if (token.text == "false" || token.text == "False") return literal(false, token.line);
        if (token.text == "none" || token.text == "None") return literal(nullptr, token.line);
        return make(Kind::variable, token.line, token.text);
      case TokenKind::string: {
        std::string text = token.text;
        while (peek().kind == TokenKind::string) text += next().text;  // "a" "b" is "ab"
        return literal(text, token.line);
      }
      case TokenKind::integer:
        try {
          return literal(std::stoll(token.text), token.line);
        } catch (const std::out_of_range&) {
          error(token, "integer literal " + token.text + " is too large");
        }
      case TokenKind::floating:
        return literal(std::stod(token.text), token.line);
      default:
        break;
    }
    if (token.text == "(" && token.kind == TokenKind::symbol) {
      if (accept_symbol(")")) return make(Kind::list, token.line, "");  // ()
      ExpressionPtr first = parse_expression();
      if (accept_symbol(")")) return first;
      auto tuple = make(Kind::list, token.line, "", std::move(first));
      while (accept_symbol(",") && !at_symbol(")")) tuple->operands.push_back(parse_expression());
      expect_symbol(")");
      return tuple;
    }
    if (token.text == "[" && token.kind == TokenKind::symbol) {
      auto list = make(Kind::list, token.line, "");
      while (!accept_symbol("]")) {
        if (!list->operands.empty()) expect_symbol(",");
        if (accept_symbol("]")) break;
        list->operands.push_back(parse_expression());
      }
      return list;
    }
    if (token.text == "{" && token.kind == TokenKind::symbol) {
      auto dict = make(Kind::dict, token.line, "");
      while (!accept_symbol("}")) {
        if (!dict->operands.empty()) expect_symbol(",");
        if (accept_symbol("}")) break;
        dict->operands.push_back(parse_expression());
        expect_symbol(":");
        dict->operands.push_back(parse_expression());
      }
      return dict;
    }
    error(token, "unexpected " + describe(token));
  }

  ExpressionPtr parse_postfix(ExpressionPtr node) {
    while (true) {
      if (at_symbol(".")) {
        const Token& dot = next();
        const Token& member = next();
        if (member.kind == TokenKind::name)
          node = make(Kind::attribute, dot.line, member.text, std::move(node));
        else if (member.kind == TokenKind::integer)
          node = make(Kind::item, dot.line, "", std::move(node), literal(std::stoll(member.text), dot.line));
        else
          error(member, "expected an attribute name after '.', found " + describe(member));
      } else if (at_symbol("[")) {
        node = parse_subscript(std::move(node));
      } else if (at_symbol("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExpressionPtr parse_subscript(ExpressionPtr node) {
    int line = next().line;
    ExpressionPtr bounds[3];
    if (!at_symbol(":")) bounds[0] = parse_expression();
    if (!accept_symbol(":")) {
      expect_symbol("]");
      return make(Kind::item, line, "", std::move(node), std::move(bounds[0]));
    }
    if (!at_symbol(":") && !at_symbol("]")) bounds[1] = parse_expression();
    if (accept_symbol(":") && !at_symbol("]")) bounds[2] = parse_expression();
    expect_symbol("]");
    return make(Kind::slice, line, "", std::move(node), std::move(bounds[0]), std::move(bounds[1]),
                std::move(bounds[2]));
  }

  Arguments parse_arguments() {
    expect_symbol("(");
    Arguments arguments;
    bool first = true;
    while (!accept_symbol(")")) {
      if (!std::exchange(first, false)) expect_symbol(",");
      if (accept_symbol(")")) break;
      if (peek().kind == TokenKind::name && at_symbol("=", 1)) {
        std::string name = next().text;
        next();
        arguments.keywords.emplace_back(name, parse_expression());
      } else {
        if (!arguments.keywords.empty()) error(peek(), "positional argument follows keyword argument");
        arguments.positional.push_back(parse_expression());
      }
    }
    return arguments;
  }

  ExpressionPtr parse_call(ExpressionPtr callee) {
    auto call = make(Kind::call, peek().line, "", std::move(callee));
    call->arguments = parse_arguments();
    return call;
  }

  ExpressionPtr parse_filter(ExpressionPtr input) {
    const Token& name = peek();
    auto filter = make(Kind::filter, name.line, expect_name(), std::move(input));
    if (!is_known_filter(filter->name)) error(name, fmt::format("no filter named '{}'", filter->name));
    if (at_symbol("(")) filter->arguments = parse_arguments();
    return filter;
  }

  ExpressionPtr parse_test(ExpressionPtr input) {
    int line = next().line;  // is
    bool negated = accept_name("not");
    const Token& name = peek();
    auto test = make(Kind::test, line, expect_name(), std::move(input));
    test->negated = negated;
    if (!is_known_test(test->name)) error(name, fmt::format("no test named '{}'", test->name));
    static const std::vector<std::string_view> not_arguments = {"else", "or", "and", "if", "in", "is", "not"};
    const Token& after = peek();
    if (at_symbol("(")) {
      test->arguments = parse_arguments();
    } else if ((after.kind == TokenKind::name &&
                std::find(not_arguments.begin(), not_arguments.end(), after.text) == not_arguments.end()) ||
               after.kind == TokenKind::string || after.kind == TokenKind::integer ||
               after.kind == TokenKind::floating || at_symbol("[") || at_symbol("{")) {
      test->arguments.positional.push_back(parse_postfix(parse_primary()));  // `is divisibleby 3`
    }
    return test;
  }

  std::vector<Token> tokens_;
  const std::string& origin_;
  size_t position_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::string ended_by_;
};

}  // namespace

Template parse_template(std::string_view source, std::string origin) {
  Template result{std::move(origin), {}};
  result.body = Parser(tokenize(source, result.origin), result.origin).parse();
  return result;
}

}  // namespace troupe::jinja
