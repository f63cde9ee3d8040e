#include "bench/bench_text.hpp"

#include <fmt/format.h>
#include <random>
#include <vector>

namespace troupe::cli {
namespace {

// Packed by hand: clang-format would put every word on a line of its own.
// clang-format off
const std::vector<std::string> kWords = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
    "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
    "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who",
    "so", "no", "model", "token", "network", "distributed", "inference", "runtime", "memory", "latency",
    "throughput", "scheduler", "request", "batch", "cluster", "machine", "learning", "language", "weather", "river",
    "mountain", "garden", "library", "history", "science", "music", "kitchen", "window", "morning", "evening",
    "journey", "question", "answer", "problem", "solution", "government", "economy", "university", "children",
    "because", "however", "although", "therefore", "beautiful", "quickly", "carefully", "important", "different",
    "possible", "available", "between", "through", "during", "without", "against", "thousand", "hundred",
    "understanding", "responsibility", "don't", "it's", "we're", "they've", "I'm", "you'll", "she'd", "isn't",
    "can't", "won't"};
// clang-format on

const std::vector<std::string> kCodeLines = {
    "def {0}(x, y=None):\n    return x ** 2 + {1}  # square plus offset\n",
    "for (int i = 0; i < {1}; ++i) {{\n  total += values[i] * {0}_scale;\n}}\n",
    "const {0} = await fetch(`/api/v1/items?id={1}&limit=50`);\n",
    "if {0} is not None and len({0}) > {1}:\n        raise ValueError(f\"bad {0}: {{{0}!r}}\")\n",
    "std::vector<float> {0}({1}, 0.0f);  // zero-initialised buffer\n",
    "SELECT {0}, COUNT(*) FROM events WHERE ts > {1} GROUP BY {0};\n",
    "<div class=\"{0}\">&nbsp;{1} items</div>\n",
    "    {0}: {{ \"id\": {1}, \"enabled\": true, \"tags\": [\"a\", \"b\"] }},\n"};

const std::vector<std::string> kIdentifiers = {"buffer",   "tokenCount", "max_len", "kv_cache", "weights",
                                               "userName", "config",     "rank_id", "shard",    "logits"};

const std::vector<std::string> kAccented = {"café",       "naïve",      "résumé",       "façade", "Ünïcödé",
                                            "ßtraße",     "Ærøskøbing", "São Paulo",    "Zürich", "crème brûlée",
                                            "Tiếng Việt", "jalapeño",   "Dvořák",       "Łódź",   "Åland",
                                            "über",       "coöperate",  "Île-de-France"};

const std::vector<std::string> kOtherScripts = {"Привет", "мир",   "быстро", "Καλημέρα", "κόσμε",      "λόγος",
                                                "שלום",   "مرحبا", "नमस्ते",   "สวัสดี",     "안녕하세요", "세계"};

// CJK and kana, one code point per entry.
const std::vector<std::string> kCjk = {"東", "京", "は", "日", "本", "の", "首", "都", "で", "す", "我", "们",
                                       "今", "天", "去", "学", "校", "人", "工", "智", "能", "模", "型", "推",
                                       "理", "分", "布", "式", "计", "算", "が", "を", "に", "と", "カ", "タ",
                                       "ナ", "テ", "ス", "ト", "中", "文", "字", "符", "、", "。"};

const std::vector<std::string> kEmoji = {"🙂", "👍🏽", "🚀",    "🎉", "❤️", "👩‍💻",
                                         "🇯🇵",   "😂",        "🤖", "✨", "🧠",   "👨‍👩‍👧"};

class TextWriter {
 public:
  explicit TextWriter(unsigned seed) : rng_(seed) {}

  std::string generate(size_t bytes) {
    text_.reserve(bytes + 256);
    while (text_.size() < bytes) {
      uint64_t section = pick(100);
      if (section < 50)
        prose();
      else if (section < 70)
        code();
      else if (section < 80)
        numbers();
      else if (section < 88)
        cjk();
      else if (section < 95)
        accented();
      else
        emoji();
      text_ += pick(4) == 0 ? "\n\n" : "\n";
    }
    // Cut at a line end so the text stays valid UTF-8.
    size_t cut = text_.rfind('\n', bytes);
    text_.resize(cut == std::string::npos ? bytes : cut + 1);
    return std::move(text_);
  }

 private:
  uint64_t pick(uint64_t n) { return rng_() % n; }
  const std::string& any(const std::vector<std::string>& items) { return items[pick(items.size())]; }

  void prose() {
    for (uint64_t sentence = 0, sentences = 2 + pick(5); sentence < sentences; ++sentence) {
      std::string first = any(kWords);
      first[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(first[0])));
      text_ += first;
      for (uint64_t word = 0, words = 5 + pick(15); word < words; ++word) {
        text_ += pick(12) == 0 ? ", " : " ";
        text_ += pick(25) == 0 ? "\"" + any(kWords) + "\"" : any(kWords);
      }
      static const char* kEnds[] = {". ", ". ", ". ", "? ", "! ", "; ", ": "};
      text_ += kEnds[pick(7)];
    }
  }

  void code() {
    const std::string& line = any(kCodeLines);
    std::string number = std::to_string(pick(100000));
    const std::string& name = any(kIdentifiers);
    // Fill {0} with an identifier and {1} with a number; {{ and }} are literal braces.
    text_ += fmt::format(fmt::runtime(line), name, number);
  }

  void numbers() {
    text_ += "Invoice " + std::to_string(2000 + pick(30)) + "-" + std::to_string(1 + pick(12)) + "-" +
             std::to_string(1 + pick(28)) + ": total " + std::to_string(pick(100)) + "," +
             std::to_string(100 + pick(900)) + "." + std::to_string(10 + pick(90)) + " USD, ratio 3." +
             std::to_string(pick(1000000)) + ", delta -" + std::to_string(pick(5000)) + ", id 0x" +
             std::to_string(1000 + pick(9000)) + ", phone +1 (555) " + std::to_string(100 + pick(900)) + "-" +
             std::to_string(1000 + pick(9000)) + ".";
  }

  void cjk() {
    for (uint64_t i = 0, n = 10 + pick(40); i < n; ++i) text_ += any(kCjk);
    text_ += "。";
  }

  void accented() {
    for (uint64_t i = 0, n = 5 + pick(10); i < n; ++i) {
      uint64_t kind = pick(3);
      text_ += kind == 0 ? any(kAccented) : kind == 1 ? any(kOtherScripts) : any(kWords);
      text_ += " ";
    }
  }

  void emoji() {
    for (uint64_t i = 0, n = 3 + pick(8); i < n; ++i) {
      text_ += any(kWords);
      text_ += pick(2) ? " " : "";
      text_ += any(kEmoji);
      text_ += " ";
    }
  }

  std::mt19937_64 rng_;  // its raw output is fixed by the standard, unlike the distributions
  std::string text_;
};

}  // namespace

std::string generate_bench_text(size_t bytes, unsigned seed) { return TextWriter(seed).generate(bytes); }

}  // namespace troupe::cli
