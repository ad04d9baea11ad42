#!/usr/bin/env python3
"""No function of core/, fs/ or tools/ is over 80 lines, unless ALLOWED
names it with the reason it reads best as one.

A function is counted from the line of its name to the line of its closing
brace (a lambda or local class counts towards the function around it).
The scan blanks comments, string and character literals and preprocessor
lines first, so braces in them do not count; then it follows the braces:
a `{` at namespace or class level whose text since the last `;`, `{` or
`}` ends in a parameter list (and qualifiers, a trailing return type or
a constructor's initializer list) opens a function body.

Usage: check_function_length.py SOURCE_DIR [DIR...] (default: core fs tools).
One line per fault on stderr; exit status 1 if any.
"""
import os
import re
import sys

MAX_LINES = 80

# "path:name": the reason it stays as one. An entry for a function that is
# gone or no longer too long is a fault too: take it out.
ALLOWED = {
    "core/redis/outcome.cpp:Parser::value": "one MessagePack switch reads best as one",
}

SOURCE_SUFFIXES = (".cpp", ".hpp", ".cc", ".h")
KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignof", "noexcept",
            "static_assert", "requires", "do", "else"}
SCOPE = re.compile(r"\b(namespace|class|struct|union|extern)\b")
ENUM = re.compile(r"\benum\b")
ACCESS = re.compile(r"\b(public|protected|private)\s*:(?!:)")
# What may follow a function's parameter list before its body.
TAIL = re.compile(r"\s*(?:(?:const|volatile|noexcept|override|final|mutable|&&|&)\s*|noexcept\s*\([^()]*\)\s*"
                  r"|->[^{};]*)*(?::(?!:)[\s\S]*)?")
NAME = re.compile(r"(operator\s*\(\s*\)|operator\s*[^\s\w(]+|operator\s+[\w:<>*& ]+|~?[A-Za-z_]\w*"
                  r"(?:\s*::\s*~?[A-Za-z_]\w*)*(?:\s*::\s*operator\s*(?:\(\s*\)|[^\s\w(]+))?)\s*$")


# The scanner's own check, run first: braces in comments, literals and
# macros do not count, and each kind of definition is found and measured.
SELF_TEST = r"""#define BODY(x) { if (x) { \
  return; } }
namespace a {
// a { in a comment
/* and { in
 } a block */
const char* k = "a { in a string";
const char k2 = '{';
const char k3 = '\'';
const long big = 1'000'000;
const char* raw = R"x(raw { string " ) still)x";
template <class T>
std::function<void()> make(T t) {
  return [t] { (void)t; };
}
class Foo final : public Bar {
 public:
  Foo(int a) : m_a{a}, m_b(a) {
    x();
  }
  int get() const noexcept { return m_a; }
  auto sum() const -> int {
    return 1;
  }
  bool operator()(int) const {
    return true;
  }
  struct Inner {
    void deep() {
    }
  };
};
enum class E : char { A, B };
const int table[] = {1, 2, f(3)};
int Foo::long_one(int x) {
""" + "  x += '}';\n" * (MAX_LINES - 1) + """}
}  // namespace a
"""
SELF_TEST_EXPECTED = [("make", 13, 3), ("Foo::Foo", 18, 3), ("Foo::get", 21, 1), ("Foo::sum", 22, 3),
                      ("Foo::operator()", 25, 3), ("Foo::Inner::deep", 29, 2), ("Foo::long_one", 35, MAX_LINES + 1)]


def blank(text):
    """The text with comments, literals and preprocessor lines turned into
    spaces (newlines kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#":  # a preprocessor line, with its continuations
            j = i
            while j < n and not (text[j] == "\n" and text[j - 1] != "\\"):
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "\n":
            line_start = True
        elif not c.isspace():
            line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == '"' and i > 0 and text[i - 1] == "R" and not (i > 1 and (text[i - 2].isalnum() or text[i - 2] == "_")
                                                                and text[i - 2] not in "uU8L"):
            m = re.compile(r'"([^()\\\s]{0,16})\(').match(text, i)
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j += 1
        elif c == "'":
            k = i
            while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"):
                k -= 1
            if k < i and text[k].isdigit():  # a digit separator: 1'000
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            out.append(c)
            i += 1
            continue
        out.append(re.sub(r"[^\n]", " ", text[i:j]))
        i = j
    return "".join(out)


def function_name(header):
    """The name of the function whose body the header opens, or None."""
    header = ACCESS.sub(lambda m: " " * len(m.group(0)), header)  # offsets stay
    depth = 0
    for pos, c in enumerate(header):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and TAIL.fullmatch(header, pos + 1):
                open_pos = _matching_open(header, pos)
                m = NAME.search(header, 0, open_pos)
                if m and m.group(1).split("::")[-1].strip() not in KEYWORDS:
                    return re.sub(r"\s+", "", m.group(1)), m.start(1)
    return None


def _matching_open(text, close):
    depth = 0
    for pos in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(text[pos], 0)
        if depth == 0:
            return pos
    return 0


def scan(path, text):
    """(name, first line, lines) of each function defined in the text."""
    code = blank(text)
    found = []
    # Frames: ("scope", class name or None), ("function", name, line),
    # ("init", None) for a brace of an initializer list, ("other",).
    stack = []
    header_start = 0
    for pos, c in enumerate(code):
        in_function = any(f[0] in ("function", "other") for f in stack)
        if c == "{":
            if in_function:
                stack.append(("inner",))
                continue
            header = code[header_start:pos]
            stripped = re.sub(r"^\s*template\s*<[^{};]*?>\s*(?=[A-Za-z_])", "", header)
            before_paren = stripped.split("(")[0]
            named = function_name(header)
            if ENUM.search(before_paren):
                stack.append(("other",))
            elif SCOPE.search(before_paren) and not named:
                m = re.search(r"\b(?:class|struct|union)\s+(?:\[\[[^\]]*\]\]\s*)?([A-Za-z_]\w*)", before_paren)
                stack.append(("scope", m.group(1) if m else None))
            elif named and re.search(r"\)[^()]*:(?!:)", header) and re.search(r"[\w>]\s*$", header):
                stack.append(("init",))  # m_x{...} in a constructor's initializer list
                continue
            elif named:
                name, offset = named
                classes = [f[1] for f in stack if f[0] == "scope" and f[1]]
                if classes and "::" not in name:
                    name = "::".join(classes + [name])
                line = code.count("\n", 0, header_start + offset) + 1
                stack.append(("function", name, line))
            else:
                stack.append(("other",))
            header_start = pos + 1
        elif c == "}":
            frame = stack.pop() if stack else ("scope", None)
            if frame[0] == "init":
                continue
            if frame[0] == "function":
                end = code.count("\n", 0, pos) + 1
                found.append((frame[1], frame[2], end - frame[2] + 1))
            if not any(f[0] in ("function", "other") for f in stack):
                header_start = pos + 1
        elif c == ";" and not in_function and not any(f[0] == "init" for f in stack):
            header_start = pos + 1
    return found


def main(argv):
    if len(argv) < 2:
        print("usage: check_function_length.py SOURCE_DIR [DIR...]", file=sys.stderr)
        return 2
    root = argv[1]
    if scan("self-test", SELF_TEST) != SELF_TEST_EXPECTED:
        print("function_length: the scanner fails its self-test: " + repr(scan("self-test", SELF_TEST)), file=sys.stderr)
        return 1
    dirs = argv[2:] or ["core", "fs", "tools"]
    faults = []
    long_ones = set()
    count = 0
    for d in dirs:
        for folder, subdirs, files in os.walk(os.path.join(root, d)):
            subdirs.sort()
            for f in sorted(files):
                if not f.endswith(SOURCE_SUFFIXES):
                    continue
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as src:
                    functions = scan(rel, src.read())
                count += len(functions)
                for name, line, lines in functions:
                    if lines <= MAX_LINES:
                        continue
                    key = rel + ":" + name
                    long_ones.add(key)
                    if key not in ALLOWED:
                        faults.append(f"{rel}:{line}: {name} is {lines} lines (at most {MAX_LINES}): split it "
                                      f"along its steps, or name it in ALLOWED ({os.path.basename(argv[0])}) "
                                      "with the reason it reads best as one")
    for key in sorted(set(ALLOWED) - long_ones):
        faults.append(f"ALLOWED names {key}, which is not a function over {MAX_LINES} lines: take it out")
    for fault in faults:
        print("function_length: " + fault, file=sys.stderr)
    if count == 0:
        print("function_length: no function found under " + " ".join(dirs), file=sys.stderr)
        return 1
    if faults:
        return 1
    print(f"function_length: {count} functions, none over {MAX_LINES} lines but the {len(ALLOWED)} allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
