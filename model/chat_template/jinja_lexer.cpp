#include "model/chat_template/jinja_lexer.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "kernels/error.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Jinja2's newline handling: every line break becomes "\n", one trailing newline goes.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') {
      out += source[i];
    } else {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, std::string_view origin) : source_(normalize_newlines(source)), origin_(origin) {}

  std::vector<Token> run() {
    while (pos_ < source_.size()) {
      size_t tag = find_tag(pos_);
      std::string text = source_.substr(pos_, tag - pos_);
      if (tag != std::string::npos) strip_before_tag(text, tag);
      if (!text.empty()) tokens_.push_back({Token::Kind::text, text, line_});
      advance_to(tag == std::string::npos ? source_.size() : tag);
      if (tag == std::string::npos) break;
      char kind = source_[tag + 1];
      bool explicit_control = tag + 2 < source_.size() && (source_[tag + 2] == '-' || source_[tag + 2] == '+');
      advance_to(tag + 2 + (explicit_control ? 1 : 0));
      if (kind == '#') {
        skip_comment();
      } else {
        bool statement = kind == '%';
        tokens_.push_back({statement ? Token::Kind::statement_begin : Token::Kind::expression_begin, "", line_});
        lex_tag(statement);
      }
    }
    tokens_.push_back({Token::Kind::end, "", line_});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(std::string_view message) const { fail("{} line {}: {}", origin_, line_, message); }

  size_t find_tag(size_t from) const {
    for (size_t at = source_.find('{', from); at != std::string::npos; at = source_.find('{', at + 1)) {
      if (at + 1 < source_.size() && (source_[at + 1] == '{' || source_[at + 1] == '%' || source_[at + 1] == '#'))
        return at;
    }
    return std::string::npos;
  }

  void advance_to(size_t to) {
    line_ += static_cast<int>(std::count(source_.begin() + pos_, source_.begin() + to, '\n'));
    pos_ = to;
  }

  // `{%-` strips all whitespace before the tag; lstrip_blocks strips spaces and tabs back to the
  // start of the line before `{%` and `{#` (not `{{`, and not after `{%+`).
  void strip_before_tag(std::string& text, size_t tag) const {
    char kind = source_[tag + 1];
    char control = tag + 2 < source_.size() ? source_[tag + 2] : '\0';
    if (control == '-') {
      while (!text.empty() && is_space(text.back())) text.pop_back();
      return;
    }
    if (control == '+' || kind == '{') return;
    size_t line_start = text.rfind('\n');
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    bool at_line_start = line_start > 0 || pos_ == 0 || source_[pos_ - 1] == '\n';
    if (at_line_start && line_start < text.size() &&
        std::all_of(text.begin() + line_start, text.end(), [](char c) { return is_space(c); }))
      text.resize(line_start);
  }

  // After a tag's end: `-` strips all whitespace, otherwise trim_blocks drops one newline.
  void after_tag_end(char control, bool trim_newline) {
    if (control == '-') {
      size_t to = pos_;
      while (to < source_.size() && is_space(source_[to])) ++to;
      advance_to(to);
    } else if (control != '+' && trim_newline && pos_ < source_.size() && source_[pos_] == '\n') {
      advance_to(pos_ + 1);
    }
  }

  void skip_comment() {
    size_t end = source_.find("#}", pos_);
    if (end == std::string::npos) error("unterminated comment (missing '#}')");
    char control = end > pos_ ? source_[end - 1] : '\0';
    advance_to(end + 2);
    after_tag_end(control, /*trim_newline=*/true);
  }

  // The tokens inside {{ }} or {% %}, up to and including the end tag. The end tag only counts
  // outside brackets, so `{{ {'a': {'b': 1}} }}` works.
  void lex_tag(bool statement) {
    const char closing = statement ? '%' : '}';
    std::string brackets;
    while (true) {
      while (pos_ < source_.size() && is_space(source_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= source_.size()) error(statement ? "missing '%}' at the end of the template" : "missing '}}'");
      std::string_view rest = std::string_view(source_).substr(pos_);
      if (brackets.empty()) {
        char control = rest[0] == '-' || rest[0] == '+' ? rest[0] : '\0';
        std::string_view after = rest.substr(control ? 1 : 0);
        if (after.size() >= 2 && after[0] == closing && after[1] == '}' && (statement || control != '+')) {
          tokens_.push_back({statement ? Token::Kind::statement_end : Token::Kind::expression_end, "", line_});
          advance_to(pos_ + (control ? 3 : 2));
          after_tag_end(control, statement);
          return;
        }
      }
      char c = rest[0];
      if (is_name_start(c)) {
        size_t n = 1;
        while (n < rest.size() && is_name_char(rest[n])) ++n;
        tokens_.push_back({Token::Kind::name, std::string(rest.substr(0, n)), line_});
        advance_to(pos_ + n);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number(rest);
      } else if (c == '\'' || c == '"') {
        lex_string(rest);
      } else {
        static const std::string_view two_char[] = {"//", "**", "==", "!=", "<=", ">="};
        size_t n = std::any_of(std::begin(two_char), std::end(two_char), [&](auto op) { return rest.starts_with(op); })
                       ? 2
                       : 1;
        if (n == 1 && std::string_view("+-*/%~<>=.,:|()[]{}").find(c) == std::string_view::npos)
          error(fmt::format("unexpected character '{}' in a tag", c));
        if (c == '(' || c == '[' || c == '{') brackets += c;
        if (c == ')' || c == ']' || c == '}') {
          char open = c == ')' ? '(' : c == ']' ? '[' : '{';
          if (brackets.empty() || brackets.back() != open) error(fmt::format("unexpected '{}'", c));
          brackets.pop_back();
        }
        tokens_.push_back({Token::Kind::symbol, std::string(rest.substr(0, n)), line_});
        advance_to(pos_ + n);
      }
    }
  }

  void lex_number(std::string_view rest) {
    auto digits = [&](size_t from) {
      while (from < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[from])) || rest[from] == '_')) ++from;
      return from;
    };
    size_t n = digits(0);
    bool floating = false;
    bool after_dot = pos_ > 0 && source_[pos_ - 1] == '.';  // `items.0.name` indexes twice
    if (!after_dot && n + 1 < rest.size() && rest[n] == '.' && std::isdigit(static_cast<unsigned char>(rest[n + 1]))) {
      n = digits(n + 1);
      floating = true;
    }
    if (!after_dot && n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
      size_t exponent = n + 1 + (n + 1 < rest.size() && (rest[n + 1] == '+' || rest[n + 1] == '-') ? 1 : 0);
      if (exponent < rest.size() && std::isdigit(static_cast<unsigned char>(rest[exponent]))) {
        n = digits(exponent);
        floating = true;
      }
    }
    std::string text(rest.substr(0, n));
    std::erase(text, '_');
    tokens_.push_back({floating ? Token::Kind::floating : Token::Kind::integer, text, line_});
    advance_to(pos_ + n);
  }

  // Python string literal escapes, as Jinja2 resolves them ("unicode-escape"): \n \t \x41 \u00e9 ...
  void lex_string(std::string_view rest) {
    const char quote = rest[0];
    std::string value;
    size_t i = 1;
    while (true) {
      if (i >= rest.size()) error("unterminated string literal");
      if (rest[i] == quote) break;
      if (rest[i] != '\\' || i + 1 >= rest.size()) {
        value += rest[i++];
        continue;
      }
      char e = rest[i + 1];
      i += 2;
      static const std::string_view simple_from = "nrtabfv\\'\"\n", simple_to = "\n\r\t\a\b\f\v\\'\"";
      if (size_t k = simple_from.find(e); k != std::string_view::npos) {
        if (e != '\n') value += simple_to[k];  // a backslash before a newline joins the lines
      } else if (size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0) {
        uint32_t code = 0;
        const char* end = rest.data() + std::min(i + digits, rest.size());
        if (std::from_chars(rest.data() + i, end, code, 16).ptr != rest.data() + i + digits ||
            (code >= 0xD800 && code < 0xE000) || code > 0x10FFFF)
          error(fmt::format("bad \\{} escape in a string", e));
        tokenizer::append_utf8(value, code);
        i += digits;
      } else {
        value += '\\';
        value += e;
      }
    }
    tokens_.push_back({Token::Kind::string, value, line_});
    advance_to(pos_ + i + 1);
  }

  std::string source_;
  std::string_view origin_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, std::string_view origin) { return Lexer(source, origin).run(); }

}  // namespace troupe::jinja
