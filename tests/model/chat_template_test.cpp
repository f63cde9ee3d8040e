// Chat templates. The Jinja subset engine (model/chat_template/jinja_*) feature by feature, with
// expected texts produced by Jinja2 3.1.6 in Hugging Face's environment (sandboxed, trim_blocks,
// lstrip_blocks, loop controls, tojson without ASCII escaping); its errors and limits; ChatTemplate
// loading; and every case of ../shared/tokenizers/{qwen3,llama3,spm32k}/chat_reference.json.
#include <doctest/doctest.h>

#include <unistd.h>
#include <fstream>

#include "kernels/error.hpp"
#include "model/chat_template/chat_template.hpp"
#include "model/chat_template/jinja_builtins.hpp"
#include "model/chat_template/jinja_parser.hpp"
#include "model/chat_template/jinja_renderer.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using Json = nlohmann::ordered_json;

namespace {

const Json kVariables = Json::parse(R"({"messages": [{"role": "user", "content": "hi"},
                                                     {"role": "assistant", "content": "yo"}],
                                        "d": {"b": 2, "a": 1}})");

std::string render(std::string_view source, const Json& variables = Json::object(),
                   const jinja::RenderLimits& limits = {}) {
  jinja::Template parsed = jinja::parse_template(source, "test.jinja");
  std::map<std::string, jinja::Value> values;
  for (const auto& [name, value] : variables.items()) values[name] = jinja::Value(value);
  return jinja::render(parsed, values, limits);
}

// The message of the troupe::Error that parsing or rendering throws.
std::string error_of(std::string_view source, const Json& variables = Json::object(),
                     const jinja::RenderLimits& limits = {}) {
  try {
    render(source, variables, limits);
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

Json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  return Json::parse(in);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  REQUIRE_MESSAGE(out, "cannot write " << path);
  out << text;
}

// Renders every case of dir/chat_reference.json; returns how many were checked.
size_t check_chat_reference(const std::filesystem::path& dir) {
  ChatTemplate chat = ChatTemplate::from_tokenizer_dir(dir);
  Json reference = read_json(dir / "chat_reference.json");
  REQUIRE(reference["cases"].size() > 0);
  size_t checked = 0;
  for (const Json& item : reference["cases"]) {
    Json extra = Json::object();
    if (item.contains("enable_thinking")) extra["enable_thinking"] = item["enable_thinking"];
    Json tools = item.value("tools", Json(nullptr));
    bool add_generation_prompt = item["add_generation_prompt"].get<bool>();
    CAPTURE(item.dump());
    if (item.contains("rendered")) {
      CHECK(chat.render(item["messages"], tools, add_generation_prompt, extra) == item["rendered"].get<std::string>());
    } else {
      CHECK_THROWS_WITH_AS(chat.render(item["messages"], tools, add_generation_prompt, extra),
                           item["error"].get<std::string>().c_str(), jinja::TemplateRaisedError);
    }
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_CASE("jinja: literals print as Python prints them") {
  CHECK(render("{{ 1 }}|{{ 1.5 }}|{{ 'a' }}|{{ true }}|{{ True }}|{{ none }}|{{ None }}|{{ [1, 'a', none, false] }}|{{ "
               "{'a': 1, 'b': [2]} }}",
               kVariables) == "1|1.5|a|True|True|None|None|[1, 'a', None, False]|{'a': 1, 'b': [2]}");
  CHECK(render("{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 2.5e-3 }}|{{ 1e16 }}|{{ 1e15 }}", kVariables) ==
        "1.0|1e+20|0.30000000000000004|1e-05|0.0025|1e+16|1000000000000000.0");
  CHECK(render("{{ \"a\" \"b\" }}|{{ \"\\x41\\u00e9\\n\" }}|{{ 'a\\qb' }}|{{ [\"it's\", 'a\"b', 'x\\ny'] }}",
               kVariables) == "ab|Aé\n|a\\qb|[\"it's\", 'a\"b', 'x\\ny']");
  CHECK(render("{{ (1, 2) | length }}|{{ [1, 2,] }}|{{ {'a': {'b': 1}} }}|{{ {'a': {'b': 1}}['a']['b'] }}",
               kVariables) == "2|[1, 2]|{'a': {'b': 1}}|1");
}

TEST_CASE("jinja: arithmetic, concatenation and operator precedence") {
  CHECK(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} "
               "{{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
               kVariables) == "3 -4 1 2 -2 3.5 2.0 1024 0.5 3.0 0.5");
  CHECK(render("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1] + [2] }} {{ [1, 2] + [3] * 2 }} {{ 'x' * -1 "
               "}}|{{ true + 1 }}",
               kVariables) == "a1None ababab xxx [1, 2] [1, 2, 3, 3] |2");
  CHECK(render("{{ -2 }} {{ - - 3 }} {{ - 2 ** 2 }} {{ 2 * 3 + 4 }} {{ 2 + 3 * 4 }} {{ 10 - 2 - 3 }} {{ "
               "messages|length - 1 }}",
               kVariables) == "-2 3 4 10 14 5 1");
}

TEST_CASE("jinja: comparisons, membership, and/or/not and inline if") {
  CHECK(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ 'a' < 'b' }} "
               "{{ 2 >= 2 }} {{ 2 <= 1 }} {{ 1 > 0.5 }}",
               kVariables) == "True False True True True True True False True");
  CHECK(render("{{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }} {{ not 'x' in 'xyz' }} {{ 'z' in x }}",
               kVariables) == "True True True False False");
  CHECK(render("{{ not 0 and 'x' or 'y' }}|{{ 0 or '' }}|{{ x or 'fallback' }}|{{ x and 'y' }}|{{ [] or 'empty' }}|{{ "
               "0.0 or 'zero' }}",
               kVariables) == "x||fallback||empty|zero");
  CHECK(render("{{ 'a' if x else 'b' }}|{{ 'a' if not x else 'b' }}|{{ 'a' if x }}|{{ 1 if false else 2 if false else "
               "3 }}|{{ 1 if 'a' in ['a'] else 0 }}",
               kVariables) == "b|a||3|1");
}

TEST_CASE("jinja: attribute, item and slice access (negative indices and steps)") {
  CHECK(render("{{ messages[0].role }} {{ messages[-1]['content'] }} {{ messages.0.role }} {{ d['a'] }} {{ d.a }} {{ "
               "messages[0]['role'] == 'user' and messages[1].role == 'assistant' }}",
               kVariables) == "user yo user 1 1 True");
  CHECK(render("{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3][-2:] }} {{ [1, 2, 3][:-1] "
               "}} {{ [1, 2, 3, 4, 5][4:1:-2] }} {{ [1, 2, 3][-1:-3:-1] }} {{ [1, 2, 3][10:] }} {{ [1, 2, 3][-100:100] "
               "}} {{ [1, 2, 3][5:0:-1] }}",
               kVariables) == "el olleh [1, 3] [2, 3] [1, 2] [5, 3] [3, 2] [] [1, 2, 3] [3, 2]");
  CHECK(render("{{ 'héllo'[1] }} {{ 'héllo'[-4:] }} {{ 'abc'[-1] }} {{ messages[5] is defined }} {{ d.missing is "
               "defined }} {{ none.attr is defined }}",
               kVariables) == "é éllo c False False False");
}

TEST_CASE("jinja: filters") {
  CHECK(render("[{{ '  a b  ' | trim }}] {{ 'xxaxx' | trim('x') }} {{ 'AbC' | lower }} {{ 'AbC' | upper }} {{ 'hello "
               "WORLD' | capitalize }} {{ \"hello world-x (y) they're\" | title }}",
               kVariables) == "[a b] a abc ABC Hello world Hello World-X (Y) They're");
  CHECK(
      render("{{ [1, 2, 3] | length }} {{ 'héllo' | length }} {{ d | length }} {{ messages | count }} {{ x | length }}",
             kVariables) == "3 5 2 2 0");
  CHECK(render("{{ x | default('dflt') }} {{ '' | default('e', true) }} {{ 0 | default('z') }} {{ none | default('z') "
               "}} {{ none | d('z', true) }} {{ 'x' | default }}",
               kVariables) == "dflt e 0 None z x");
  CHECK(render("{{ [3, 4] | first }} {{ [3, 4] | last }} {{ 'abc' | first }} {{ (messages | last).content }} {{ [1, 2, "
               "3] | join(', ') }} {{ ['a', 'b'] | join }} {{ messages | join('/', attribute='role') }}",
               kVariables) == "3 4 a yo 1, 2, 3 ab user/assistant");
  CHECK(render("{{ 'aXbX' | replace('X', '-') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '.') }} {{ 3 "
               "| string }} {{ [1] | string }} {{ 'ab' | safe }}",
               kVariables) == "a-b- bba .a.b. 3 [1] ab");
  CHECK(render("{{ d | items | list | length }} {{ d | list }} {{ 'ab' | list }} {{ [3, 1, 2] | reverse | list }} {{ "
               "'abc' | reverse }}",
               kVariables) == "2 ['b', 'a'] ['a', 'b'] [2, 1, 3] cba");
  CHECK(render("{{ messages | map(attribute='role') | list }} {{ messages | map(attribute='missing', default='?') | "
               "join }} {{ ['a', 'b'] | map('upper') | join }} {{ [' a ', 'b '] | map('trim') | list }}",
               kVariables) == "['user', 'assistant'] ?? AB ['a', 'b']");
  CHECK(render("{{ messages | selectattr('role', 'equalto', 'user') | list }} {{ messages | rejectattr('role', 'eq', "
               "'user') | map(attribute='content') | first }} {{ messages | selectattr('content') | list | length }} "
               "{{ [0, 1, 2, ''] | select | list }} {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3] | "
               "reject('even') | list }} {{ [1, 5, 3] | select('gt', 2) | list }}",
               kVariables) == "[{'role': 'user', 'content': 'hi'}] yo 2 [1, 2] [1, 3] [1, 3] [5, 3]");
  CHECK(render("{{ '42' | int }} {{ ' 7 ' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int "
               "}} {{ -3.9 | int }} {{ true | int }} {{ 'ff' | int(base=16) }} {{ '2.5' | float }} {{ 3 | float }} {{ "
               "-3 | abs }} {{ -2.5 | abs }}",
               kVariables) == "42 7 4 0 7 3 -3 1 255 2.5 3.0 3 2.5");
}

TEST_CASE("jinja: indent, sort and Unicode case mapping") {
  CHECK(render("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, first=true) }}|{{ 'a\\n\\nb\\n' | indent('> ', "
               "blank=true) }}",
               kVariables) == "a\n    b\n\n    c|  a\n  b|a\n> \n> b\n> ");
  CHECK(render("{{ [3, 1, 2] | sort | list }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | "
               "sort(case_sensitive=true) }} {{ messages | sort(attribute='role') | map(attribute='content') | join }} "
               "{{ [1, 3, 2] | sort(reverse=true) }}",
               kVariables) == "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] yohi [3, 2, 1]");
  CHECK(render("{{ 'élan vital'.title() }} {{ 'éCOLE' | capitalize }} {{ 'ÄÖ ü'.upper() }} {{ 'ÉCOLE'.lower() }} {{ "
               "'élan-vital (x)' | title }} {{ '123' is lower }} {{ 'É1' is upper }}",
               kVariables) == "Élan Vital École ÄÖ Ü école Élan-Vital (X) False True");
}

TEST_CASE("jinja: tojson writes as json.dumps(ensure_ascii=False) does, with indent, sort_keys and separators") {
  CHECK(render("{{ {'a': 'é — 日本', 'b': [1, 2.5, none, true, false]} | tojson }}", kVariables) ==
        "{\"a\": \"é — 日本\", \"b\": [1, 2.5, null, true, false]}");
  CHECK(render("{{ {'a': 1, 'b': [1, {}], 'c': [], 'd': {'e': 'f'}} | tojson(indent=2) }}", kVariables) ==
        "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    {}\n  ],\n  \"c\": [],\n  \"d\": {\n    \"e\": \"f\"\n  }\n}");
  CHECK(render("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|{{ [1, 2, {'a': 3}] | tojson(separators=[',', ':']) "
               "}}|{{ [1] | tojson(indent='\\t') }}",
               kVariables) == "{\"a\": 2, \"b\": 1}|[1,2,{\"a\":3}]|[\n\t1\n]");
  CHECK(render("{{ 'x\"\\n\\t\\\\/' | tojson }}|{{ '\\x01\\x7f' | tojson }}|{{ 1.0 | tojson }}|{{ 1e100 | tojson }}|{{ "
               "messages | tojson }}|{{ d | tojson }}",
               kVariables) ==
        "\"x\\\"\\n\\t\\\\/\"|\"\\u0001\"|1.0|1e+100|[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": "
        "\"assistant\", \"content\": \"yo\"}]|{\"b\": 2, \"a\": 1}");
}

TEST_CASE("jinja: string methods") {
  CHECK(render("[{{ '  x y  '.strip() }}] {{ 'xxyxx'.strip('x') }} [{{ '  x '.lstrip() }}] [{{ ' x  '.rstrip() }}] {{ "
               "'abcba'.strip('ab') }} [{{ '\\t a \\n'.strip() }}] [{{ '\\u3000a\\u00a0'.strip() }}]",
               kVariables) == "[x y] y [x ] [ x] c [a] [a]");
  CHECK(render("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.startswith(('x', 'a')) }} {{ "
               "'abc'.startswith(('x', 'y')) }} {{ 'abc'.endswith('') }}",
               kVariables) == "True True True False True");
  CHECK(render("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ '  a b  c "
               "'.split(none, 1) }} {{ ''.split(',') }} {{ ''.split() }} {{ 'a</think>b'.split('</think>')[-1] }}",
               kVariables) == "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b,c'] ['a', 'b  c '] [''] [] b");
  CHECK(render("{{ 'aBc'.upper() }} {{ 'aBc'.lower() }} {{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) "
               "}} {{ \"they're bill's 3rd\".title() }} {{ 'hELLO'.capitalize() }} {{ ','.join(['a', 'b']) }} {{ "
               "'-'.join('abc') }}",
               kVariables) == "ABC abc a+b+c ab-c They'Re Bill'S 3Rd Hello a,b a-b-c");
}

TEST_CASE("jinja: dict methods and two-name for loops") {
  CHECK(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys() | list }}|{{ d.values() | list "
               "}}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 9) }}|{% for k in d %}{{ k }}{% endfor %}|{% for k, "
               "v in d | items %}{{ k }}{{ v }}{% endfor %}",
               kVariables) == "b=2;a=1;|['b', 'a']|[2, 1]|1|None|9|ba|b2a1");
}

TEST_CASE("jinja: tests") {
  CHECK(render("{{ x is defined }} {{ x is undefined }} {{ x is not defined }} {{ d.a is defined }} {{ none is none }} "
               "{{ 0 is none }} {{ 'a' is string }} {{ 1 is string }} {{ d is mapping }} {{ messages is mapping }}",
               kVariables) == "False True True True True False True False True False");
  CHECK(
      render(
          "{{ d is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ 'a' is sequence }} {{ messages is sequence "
          "}} {{ 1 is number }} {{ 1.5 is number }} {{ 'a' is number }} {{ 1 is integer }} {{ 1.0 is float }}",
          kVariables) == "True True False True True True True False True True");
  CHECK(render("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ true is boolean }} {{ 1 is "
               "boolean }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 2 is ne 1 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 "
               "is ge 2 }} {{ 2 is le 1 }}",
               kVariables) == "True False True False True False True False True True False True False");
  CHECK(render("{{ 3 is odd }} {{ 4 is even }} {{ -3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 2 "
               "is in [1, 2] }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ raise_exception is callable }} {{ 'x' is "
               "callable }}",
               kVariables) == "True True True True False True True True True False");
}

TEST_CASE("jinja: set, namespace and scoping") {
  CHECK(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}", kVariables) == "1");
  CHECK(render("{% set ns = namespace(v=0, w='a') %}{% for i in [1, 2, 3] %}{% set ns.v = ns.v + i %}{% endfor %}{{ "
               "ns.v }}{{ ns.w }}",
               kVariables) == "6a");
  CHECK(render("{% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'assistant' %}{% set "
               "ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
               kVariables) == "True");
  CHECK(render("{% for m in messages %}{% set last = m %}{% endfor %}{{ last is defined }}|{% if true %}{% set y = 5 "
               "%}{% endif %}{{ y }}|{% set a, b = [1, 2] %}{{ a }}{{ b }}",
               kVariables) == "False|5|12");
  CHECK(render("{% set messages = messages[1:] %}{{ messages | length }}|{% set ns = namespace(items=[]) %}{% for m in "
               "messages %}{% set ns.items = ns.items + [m.role] %}{% endfor %}{{ ns.items }}",
               kVariables) == "1|['assistant']");
}

TEST_CASE("jinja: loop variables, loop filters, for-else, break and continue") {
  CHECK(render("{% for i in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ "
               "loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
               kVariables) == "1032TrueFalse3b;2121FalseFalse3ac;3210FalseTrue3b;");
  CHECK(render("{% for i in [] %}x{% else %}empty{% endfor %}|{% for i in [1] %}x{% else %}empty{% endfor %}|{% for i "
               "in x %}never{% endfor %}",
               kVariables) == "empty|x|");
  CHECK(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif "
               "%}{{ i }}{% endfor %}",
               kVariables) == "0134");
  CHECK(render("{% for i in range(10) if i is odd %}{{ i }}/{{ loop.length }} {% endfor %}|{{ range(3) | list }}{{ "
               "range(1, 7, 2) | list }}{{ range(5, 0, -2) | list }}",
               kVariables) == "1/5 3/5 5/5 7/5 9/5 |[0, 1, 2][1, 3, 5][5, 3, 1]");
  CHECK(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for (a, b) in [[1, 2]] %}{{ a }}{{ b }}{% "
               "endfor %}",
               kVariables) == "37|12");
  CHECK(render("{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% if b == 3 %}{% continue "
               "%}{% endif %}x{% endfor %}{% if a == 1 %}{% break %}{% endif %}{% endfor %}",
               kVariables) == "113 214 x");
  CHECK(render("{% for m in messages if m.role != 'user' %}{{ loop.index }}:{{ m.content }}{% else %}none{% endfor "
               "%}|{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% endfor %}",
               kVariables) == "1:yo|aba");
  CHECK(render("{% for m in messages[::-1] %}{% set index = (messages|length - 1) - loop.index0 %}{{ index }}{{ m.role "
               "}} {% endfor %}",
               kVariables) == "1assistant 0user ");
}

TEST_CASE("jinja: macros, filter blocks and set blocks") {
  CHECK(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', "
               "'?') }} {{ greet(name='c', punct='.') }} {{ greet(punct=';', name='d') }} [{{ greet() }}]",
               kVariables) == "Hi a! Hi b? Hi c. Hi d; [Hi !]");
  CHECK(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", kVariables) ==
        "54321");
  CHECK(render("{% macro f() %}{{ x }}{% endmacro %}{% set x = 'top' %}{{ f() }}{% for i in [1] %}{% set x = 'loop' "
               "%}{{ f() }}{% endfor %}",
               kVariables) == "toptop");
  CHECK(render("{% filter upper %}abc {{ 'x' }}{% endfilter %}|{% filter trim | upper %}  ab  {% endfilter %}|{% set "
               "blk %}B{{ 1 }}{% endset %}{{ blk }}",
               kVariables) == "ABC X|AB|B1");
}

TEST_CASE("jinja: whitespace control: trim_blocks, lstrip_blocks, - and + markers, comments") {
  CHECK(render("{% for m in messages %}\n    {% if m.role == 'user' %}\n        U: {{ m.content }}\n    {% else %}\n   "
               "     A: {{ m.content }}\n    {% endif %}\n{% endfor %}",
               kVariables) == "        U: hi\n        A: yo\n");
  CHECK(render("{% for m in messages %}{{ m.role }}\n{% endfor %}", kVariables) == "user\nassistant\n");
  CHECK(render("text   {# c #}   more\n  {# c2 #}\nend", kVariables) == "text      more\nend");
  CHECK(render("{%- if true %}  a  {% endif -%}\n   b", kVariables) == "  a  b");
  CHECK(render("  {{ 'x' }}  {% if true %}  y  {% endif %}", kVariables) == "  x    y  ");
  CHECK(render("a\n{%+ if true %}\nb\n{% endif +%}\nc", kVariables) == "a\nb\n\nc");
  CHECK(render("a  {%- if true -%}  b  {%- endif -%}  c", kVariables) == "abc");
  CHECK(render("a {{- 'b' -}} c {{ 'd' }} e", kVariables) == "abc d e");
  CHECK(render("line1\n    {# comment #}\nline2 {#- x -#}   line3", kVariables) == "line1\nline2line3");
  CHECK(render("{{ 'a' }}\n{{ 'b' }}\n", kVariables) == "a\nb");
  CHECK(render("{%- for m in messages -%}\n  {{ m.role }}:{{ m.content }}\n{% endfor -%}\nEND", kVariables) ==
        "user:hi\nassistant:yo\nEND");
  CHECK(render("{{ '}}' }}|{{ {'a': {'b': '%}'}} }}", kVariables) == "}}|{'a': {'b': '%}'}}");
}

TEST_CASE("jinja: Hugging Face extras: generation blocks, strftime_now, raise_exception") {
  CHECK(render("{% generation %}kept {{ 1 }}{% endgeneration %}") == "kept 1");
  CHECK(render("{{ strftime_now('%Y') | length }}") == "4");
  CHECK_THROWS_WITH_AS(render("{{ raise_exception('Roles must alternate user/assistant') }}"),
                       "Roles must alternate user/assistant", jinja::TemplateRaisedError);
  CHECK_THROWS_WITH_AS(render("{% macro m() %}{% for x in [1] %}{{ raise_exception('deep ' ~ x) }}{% endfor %}"
                              "{% endmacro %}{{ m() }}"),
                       "deep 1", jinja::TemplateRaisedError);
}

TEST_CASE("jinja: parse errors name the line") {
  CHECK(error_of("a\n{% if x %}\nb") ==
        "test.jinja line 3: unexpected end of template, expected '{% elif %}' or '{% else %}' or '{% endif %}'");
  CHECK(
      error_of("{% if true %}\n{% endfor %}") ==
      "test.jinja line 2: unknown or unexpected tag 'endfor', expected '{% elif %}' or '{% else %}' or '{% endif %}'");
  CHECK(error_of("{% include 'other.jinja' %}") == "test.jinja line 1: unknown or unexpected tag 'include'");
  CHECK(error_of("\n\n{% if false %}{{ x | nosuchfilter }}{% endif %}") ==
        "test.jinja line 3: no filter named 'nosuchfilter'");  // as Jinja2: even where it never runs
  CHECK(error_of("{{ x is nosuchtest }}") == "test.jinja line 1: no test named 'nosuchtest'");
  CHECK(error_of("{% break %}") == "test.jinja line 1: 'break' outside of a loop");
  CHECK(error_of("x\n{{ 'abc }}") == "test.jinja line 2: unterminated string literal");
  CHECK(error_of("{# never closed") == "test.jinja line 1: unterminated comment (missing '#}')");
  CHECK(error_of("{{ 1 + }}") == "test.jinja line 1: unexpected '}}'");
  CHECK(error_of("{{ a ! b }}") == "test.jinja line 1: unexpected character '!' in a tag");
  CHECK(error_of("{{ (1 }}") == "test.jinja line 1: unexpected '}'");
  CHECK(error_of("{{ [1) }}") == "test.jinja line 1: unexpected ')'");
  CHECK(error_of("{% for x in [1] recursive %}{% endfor %}") == "test.jinja line 1: recursive loops are not supported");
  CHECK(error_of("{{ f(a=1, 2) }}") == "test.jinja line 1: positional argument follows keyword argument");
  CHECK(error_of("{{ '\\ud800' }}") == "test.jinja line 1: bad \\u escape in a string");
}

TEST_CASE("jinja: render errors name the line") {
  CHECK(error_of("\n{{ x.y }}") == "test.jinja line 2: 'x' is undefined");
  CHECK(error_of("{{ x() }}") == "test.jinja line 1: 'x' is undefined");
  CHECK(error_of("{{ 'a' + 1 }}") == "test.jinja line 1: unsupported operand types for +: 'str' and 'int'");
  CHECK(error_of("{{ 1 < 'a' }}") == "test.jinja line 1: '<' not supported between instances of 'int' and 'str'");
  CHECK(error_of("{{ 1 // 0 }}") == "test.jinja line 1: integer division or modulo by zero");
  CHECK(error_of("{{ 10 ** 20 }}") == "test.jinja line 1: integer overflow in 10 ** 20");
  CHECK(error_of("{% for a, b in [1, 2] %}{% endfor %}") == "test.jinja line 1: cannot unpack a int into 2 names");
  CHECK(error_of("{% for x in 5 %}{% endfor %}") == "test.jinja line 1: 'int' object is not iterable");
  CHECK(error_of("{{ messages.append(1) }}", kVariables) ==
        "test.jinja line 1: 'list object' has no attribute 'append'");
  CHECK(error_of("{% set x = 1 %}\n{% set x.y = 2 %}") ==
        "test.jinja line 2: cannot set 'x.y': 'x' is not a namespace");
  CHECK(error_of("{{ 'a' | trim(1, 2) }}") == "test.jinja line 1: trim() takes at most 1 arguments (2 given)");
  CHECK(error_of("{{ 'a' | replace('a', 'b', counts=1) }}") ==
        "test.jinja line 1: replace() got an unexpected keyword argument 'counts'");
  CHECK(error_of("{{ [x] }}") == "test.jinja line 1: 'x' is undefined");
  CHECK(error_of("{{ 'abc'[::0] }}") == "test.jinja line 1: slice step cannot be zero");
  CHECK(error_of("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}") ==
        "test.jinja line 1: macro 'm' takes 1 arguments (2 given)");
  CHECK(error_of("{{ {'a': 1} | tojson(ensure_ascii=true) }}") ==
        "test.jinja line 1: tojson(ensure_ascii=True) is not supported");
}

TEST_CASE("jinja: limits stop runaway templates") {
  jinja::RenderLimits small;
  small.max_output_bytes = 100;
  small.max_loop_iterations = 50;
  small.max_depth = 40;
  CHECK(error_of("{% for c in 'x' * 60 %}{% endfor %}", {}, small) ==
        "test.jinja line 1: more than 50 loop iterations");
  CHECK(error_of("{% for i in range(20) %}\n{% for j in range(20) %}{% endfor %}{% endfor %}", {}, small) ==
        "test.jinja line 2: more than 50 loop iterations");
  CHECK(error_of("{% for i in range(40) %}0123456789{% endfor %}", {}, small) ==
        "test.jinja line 1: rendered output exceeds 100 bytes");
  CHECK(error_of("{{ 'x' * 1000 }}", {}, small) ==
        "test.jinja line 1: a value of 18446744073709551615 bytes exceeds the limit of 100 bytes");
  CHECK(error_of("{% set ns = namespace(s='ab') %}{% for i in range(9) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", {},
                 small) == "test.jinja line 1: a value of 144 bytes exceeds the limit of 100 bytes");
  CHECK(error_of("{{ range(60) | length }}", {}, small) == "test.jinja line 1: range() of more than 50 items");
  CHECK(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {}, small) ==
        "test.jinja line 1: nesting deeper than 40 (recursive macro?)");
  CHECK(error_of("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}") ==
        "test.jinja line 1: the template nests too deeply");
  CHECK(error_of(std::string(300, '[') + std::string(300, ']')) == "(no error)");  // text, not a tag
  CHECK(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}") ==
        "test.jinja line 1: nesting deeper than 200 (recursive macro?)");  // the default limits
  Json deep = Json::array();
  for (int i = 0; i < 300; ++i) deep = Json::array({deep});
  CHECK(error_of("{{ v | tojson }}", {{"v", deep}}) == "test.jinja line 1: data nested deeper than 256 levels");
  CHECK(error_of("{{ v }}", {{"v", deep}}) == "test.jinja line 1: data nested deeper than 256 levels");
}

TEST_CASE("ChatTemplate: list-form templates, special token objects, chat_template.jinja and from_file") {
  const auto dir = std::filesystem::temp_directory_path() / ("troupe_chat_template_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string body =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}[assistant]{% endif %}|{{ tools | tojson }}|{{ flavor }}";
  Json config = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                 {"eos_token", "</s>"},
                 {"pad_token", nullptr},
                 {"chat_template", Json::array({{{"name", "tool_use"}, {"template", "unused"}},
                                                {{"name", "default"}, {"template", body}}})}};
  write_file(dir / "tokenizer_config.json", config.dump());
  const Json messages = Json::parse(R"([{"role": "user", "content": "hi"}])");
  const Json tools = Json::parse(R"([{"z": 1, "a": {"y": 2, "b": 3}}])");
  ChatTemplate chat = ChatTemplate::from_tokenizer_dir(dir);
  CHECK(chat.render(messages, nullptr, true, {{"flavor", "!"}}) == "<s>[user]hi</s>[assistant]|null|!");
  CHECK(chat.render(messages, tools) == R"(<s>[user]hi</s>|[{"z": 1, "a": {"y": 2, "b": 3}}]|)");  // key order kept
  CHECK(chat.special_tokens() == Json({{"bos_token", "<s>"}, {"eos_token", "</s>"}}));
  CHECK_THROWS_WITH_AS(chat.render(Json::object()), "chat template: messages must be a list, not object", Error);
  jinja::RenderLimits tiny;
  tiny.max_output_bytes = 10;
  chat.set_limits(tiny);
  CHECK_THROWS_WITH_AS(
      chat.render(messages, nullptr, true),
      ((dir / "tokenizer_config.json").string() + " (chat_template 'default') line 1: rendered output exceeds 10 bytes")
          .c_str(),
      Error);

  config["chat_template"] = Json::array({{{"name", "tool_use"}, {"template", "unused"}}});
  write_file(dir / "tokenizer_config.json", config.dump());
  CHECK_THROWS_WITH_AS(ChatTemplate::from_tokenizer_dir(dir),
                       ((dir / "tokenizer_config.json").string() +
                        ": chat_template has no template named \"default\" (it has \"tool_use\")")
                           .c_str(),
                       Error);

  config.erase("chat_template");
  write_file(dir / "tokenizer_config.json", config.dump());
  write_file(dir / "chat_template.jinja", "{{ bos_token }}{{ messages[0].content }}\n");
  CHECK(ChatTemplate::from_tokenizer_dir(dir).render(messages) == "<s>hi");
  write_file(dir / "other.jinja", "{{ eos_token }}\n{{ undefined_name.x }}");
  CHECK(ChatTemplate::from_file(dir / "other.jinja").special_tokens().empty());
  CHECK_THROWS_WITH_AS(ChatTemplate::from_file(dir / "other.jinja", dir).render(messages),
                       ((dir / "other.jinja").string() + " line 2: 'undefined_name' is undefined").c_str(), Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("qwen3 chat template renders its reference conversations") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/qwen3");
  CHECK(check_chat_reference(dir) == 8);
}

TEST_CASE("llama3 chat template renders its reference conversations") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/llama3");
  CHECK(check_chat_reference(dir) == 8);
}

TEST_CASE("spm32k chat template renders its reference conversations and rejects bad role order") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/spm32k");
  CHECK(check_chat_reference(dir) == 8);
}
