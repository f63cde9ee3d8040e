#pragma once
// troupe::jinja lexer: template source -> tokens, as Jinja2's lexer does it in the environment
// Hugging Face renders chat templates with (trim_blocks=True, lstrip_blocks=True).
//
// Text between tags becomes one `text` token; `{{ ... }}` and `{% ... %}` become begin/end tokens
// around the expression tokens inside; `{# ... #}` comments vanish. Whitespace control is applied
// here: `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all whitespace
// after it; trim_blocks drops the first newline after `%}` or `#}`, lstrip_blocks drops the spaces
// and tabs between the start of a line and `{%` or `{#` (a `+` after `{%` or before `%}` opts
// out). Like Jinja2, "\r\n" and "\r" become "\n" and one trailing newline of the source is dropped.
// Errors throw troupe::Error "ORIGIN line N: ...".
#include <string>
#include <string_view>
#include <vector>

namespace troupe::jinja {

struct Token {
  enum class Kind {
    text,              // literal template text (whitespace control already applied)
    expression_begin,  // {{
    expression_end,    // }}
    statement_begin,   // {%
    statement_end,     // %}
    name,              // identifiers and keywords: for, in, not, true, ...
    string,            // a string literal, `text` holds its value with escapes resolved
    integer,           // digits, `text` holds them without '_' separators
    floating,          // 1.5, 2e3
    symbol,            // operators and punctuation: + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }
    end,               // end of the source
  };
  Kind kind;
  std::string text;
  int line;  // 1-based line of the token's first character
};

std::vector<Token> tokenize(std::string_view source, std::string_view origin);

}  // namespace troupe::jinja
