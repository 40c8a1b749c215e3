"""Go's text/template language and Docker's functions, against what Docker prints.

Every expected string in the first three tables is what ``docker version --format T``
(the Docker 20.10.24 CLI installed here, built with go1.24.3) printed for template T:
those templates use literals only, so the CLI renders them without a daemon. The
data-driven table follows Go's map/struct rules as Docker's inspect shows them."""

from __future__ import annotations

from typing import Any

import pytest

from forklift.cli.format import MAP_FIELDS, TemplateError, render
from forklift.gotemplate import ExecError, ParseError, parse

OUTPUTS = [
    ('plain text',
     'plain text'),
    ('{{"a"}}{{`raw\\n`}}{{\'x\'}}',
     'araw\\n120'),
    ('{{1}} {{-1}} {{+1}} {{0x1F}} {{0X1f}} {{0o17}} {{017}} {{0b101}} {{1_000}} {{0x_FF}}',
     '1 -1 1 31 31 15 15 5 1000 255'),
    ('{{1.5}} {{1e6}} {{1e5}} {{123456.0}} {{1234567.0}} {{0.0001}} {{0.00001}} {{.5}} {{1.}} {{0x1p-2}} {{1e21}} {{-0.0}}',
     '1.5 1e+06 100000 123456 1.234567e+06 0.0001 1e-05 0.5 1 0.25 1e+21 -0'),
    ('{{true}} {{false}}',
     'true false'),
    ('{{print nil}}',
     '<nil>'),
    ('a {{- " b " -}} c',
     'a b c'),
    ('a  {{- /* comment */ -}}  b',
     'ab'),
    ('{{/* comment */}}x',
     'x'),
    ('{{- 1 }} {{ 2 -}}',
     '1 2'),
    ('x{{ 1 -}}',
     'x1'),
    ('  y',
     '  y'),
    ('{{"a" | printf "%s!"}}',
     'a!'),
    ('{{1 | printf "%d-%d" 2}}',
     '2-1'),
    ('{{printf "%s" "a" | printf "<%s>"}}',
     '<a>'),
    ('{{(print 1 2)}}',
     '1 2'),
    ('{{print (print 1) (print "a" "b")}}',
     '1ab'),
    ('{{$x := 1}}{{$x}}',
     '1'),
    ('{{$x := 1}}{{$x = 2}}{{$x}}',
     '2'),
    ('{{$x := "a"}}{{if true}}{{$x = "b"}}{{end}}{{$x}}',
     'b'),
    ('{{$x := "a"}}{{if true}}{{$x := "b"}}{{$x}}{{end}}{{$x}}',
     'ba'),
    ('{{if 1}}yes{{end}}',
     'yes'),
    ('{{if 0}}yes{{else}}no{{end}}',
     'no'),
    ('{{if ""}}a{{else if "x"}}b{{else}}c{{end}}',
     'b'),
    ('{{if false}}a{{else if false}}b{{else}}c{{end}}',
     'c'),
    ('{{if 0.0}}a{{else}}b{{end}}',
     'b'),
    ('{{range $i := 3}}{{$i}}{{end}}',
     '012'),
    ('{{range 0}}x{{else}}none{{end}}',
     'none'),
    ('{{range $i, $v := split "a,b,c" ","}}{{$i}}={{$v}} {{end}}',
     '0=a 1=b 2=c '),
    ('{{range $v := split "a,b" ","}}{{$v}}{{end}}',
     'ab'),
    ('{{and 1 2}} {{and 0 2}} {{and 1 ""}} {{or 0 ""}} {{or 0 "x"}} {{or 1 2}}',
     '2 0   x 1'),
    ('{{and 1}} {{or 0}}',
     '1 0'),
    ('{{and 0 (index nil 1)}}',
     '0'),
    ('{{or 1 (index nil 1)}}',
     '1'),
    ('{{not 0}} {{not 1}} {{not ""}} {{not "a"}} {{not nil}}',
     'true false true false true'),
    ('{{len "abc"}} {{len "héllo"}} {{len (split "a,b,c" ",")}}',
     '3 6 3'),
    ('{{index "abc" 1}}',
     '98'),
    ('{{index (split "a,b,c" ",") 2}}',
     'c'),
    ('{{index "x"}}',
     'x'),
    ('{{slice "abcdef" 1 3}} {{slice "abcdef" 2}} {{slice "abcdef"}} {{slice (split "a,b,c" ",") 1}}',
     'bc cdef abcdef [b c]'),
    ('{{slice (split "a,b,c" ",") 1 2 3}}',
     '[b]'),
    ('{{print 1 2}} {{print "a" "b"}} {{print 1 "a" 2}} {{print true false}} {{print 1.5 2}}',
     '1 2 ab 1a2 true false 1.5 2'),
    ('{{print}}|{{println}}|{{println "a" 1 true}}',
     '|\n|a 1 true\n'),
    ('{{printf "%d|%5d|%-5d|%05d|%+d|% d|%x|%X|%o|%O|%b|%c|%q|%U|%#U|%#x|%#o" 42 42 42 42 42 42 255 255 8 8 5 65 65 65 65 255 8}}',
     "42|   42|42   |00042|+42| 42|ff|FF|10|0o10|101|A|'A'|U+0041|U+0041 'A'|0xff|010"),
    ('{{printf "%s|%10s|%-10s|%.2s|%q|%x|% x|%X|%#q|%v" "hello" "hi" "hi" "hello" "a\\"b" "hi" "hi" "hi" "ab" "v"}}',
     'hello|        hi|hi        |he|"a\\"b"|6869|68 69|6869|`ab`|v'),
    ('{{printf "%f|%.2f|%8.3f|%-8.2f|%08.3f|%e|%.3e|%E|%g|%.3g|%G|%v|%+.1f" 3.14159 3.14159 3.14159 3.14159 -3.14159 1234.5678 1234.5678 1234.5678 0.000012345 1234567.0 1e-7 2.5 2.0}}',
     '3.141590|3.14|   3.142|3.14    |-003.142|1.234568e+03|1.235e+03|1.234568E+03|1.2345e-05|1.23e+06|1E-07|2.5|+2.0'),
    ('{{printf "%t|%v|%5t|%-6t|" true false true false}}',
     'true|false| true|false |'),
    ('{{printf "%d %s" "x" 1}}',
     '%!d(string=x) %!s(int=1)'),
    ('{{printf "%t %f %c" "s" 1 "x"}}',
     '%!t(string=s) %!f(int=1) %!c(string=x)'),
    ('{{printf "%d"}}',
     '%!d(MISSING)'),
    ('{{printf "%d %d" 1}}',
     '1 %!d(MISSING)'),
    ('{{printf "%d" 1 2 "a"}}',
     '1%!(EXTRA int=2, string=a)'),
    ('{{printf "%!"}}',
     '%!!(MISSING)'),
    ('{{printf "%"}}',
     '%!(NOVERB)'),
    ('{{printf "%z" 1}}',
     '%!z(int=1)'),
    ('{{printf "100%%"}}',
     '100%'),
    ('{{printf "%v %d" nil nil}}',
     '<nil> %!d(<nil>)'),
    ('{{printf "%[2]s %[1]s" "a" "b"}}',
     'b a'),
    ('{{printf "%*d|%-*d" 4 1 4 2}}',
     '   1|2   '),
    ('{{printf "%.*f" 1 3.14159}}',
     '3.1'),
    ('{{printf "%v" (split "a,b" ",")}} {{printf "%q" (split "a,b" ",")}} {{printf "%5s" (split "a,b" ",")}}',
     '[a b] ["a" "b"] [    a     b]'),
    ('{{printf "%T %T %T %T %T" 1 "s" 1.5 true nil}}',
     'int string float64 bool <nil>'),
    ('{{printf "%x %X" 3.5 -1}}',
     '0x1.cp+01 -1'),
    ('{{printf "%6.2v|%.3v|%10.4v" 3.14159 "abcdef" 2.0}}',
     '   3.1|abc|         2'),
    ('{{printf "%d" 1.5}}',
     '%!d(float64=1.5)'),
    ('{{eq 1 1}} {{eq 1 2}} {{eq "a" "a"}} {{eq 1 2 3 1}} {{eq true true}} {{eq 1.5 1.5}}',
     'true false true true true true'),
    ('{{ne 1 2}} {{ne "a" "a"}}',
     'true false'),
    ('{{lt 1 2}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{lt "a" "b"}} {{lt 1.5 2.5}}',
     'true true true false true true'),
    ('{{html "<a href=\\"x\\">&\'</a>"}}',
     '&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;'),
    ('{{html 1 "<" 2}}',
     '1&lt;2'),
    ('{{js "a\'b\\"c\\\\<>&=\\n\\t"}}',
     'a\\\'b\\"c\\\\\\u003C\\u003E\\u0026\\u003D\\u000A\\u0009'),
    ('{{js "é"}}',
     'é'),
    ('{{urlquery "a b&c=d/e?f~g_h.i-j"}}',
     'a+b%26c%3Dd%2Fe%3Ff~g_h.i-j'),
    ('{{urlquery "é" 1}}',
     '%C3%A91'),
    ('{{json "a<b>&c"}} {{json 1}} {{json 1.5}} {{json 1e21}} {{json 1e6}} {{json true}} {{json nil}} {{json (split "a,b" ",")}}',
     '"a<b>&c" 1 1.5 1e+21 1000000 true null ["a","b"]'),
    ('{{json "é\\n\\t\\u2028"}}',
     '"é\\n\\t\\u2028"'),
    ('{{join (split "a,b,c" ",") "-"}}',
     'a-b-c'),
    ('{{split "a,b,c" ","}} {{split "abc" ""}} {{len (split "" ",")}}',
     '[a b c] [a b c] 1'),
    ('{{title "hello wORLD foo_bar x-y 1a"}}',
     'Hello WORLD Foo_bar X-Y 1a'),
    ('{{lower "HeLLo"}} {{upper "héllo"}}',
     'hello HÉLLO'),
    ('{{pad "x" 2 3}}|{{pad "" 2 3}}|',
     '  x   ||'),
    ('{{truncate "abcdef" 3}}|{{truncate "ab" 3}}|{{truncate "abc" 3}}|',
     'abc|ab|abc|'),
    ('{{print |}}',
     ''),
    ('{{-1}}',
     '-1'),
    ('{{ -1 }}',
     '-1'),
    ('{{define "x"}}{{end}}{{define "x"}}a{{end}}',
     ''),
    ('x{{"a" | printf "%s"}}y',
     'xay'),
    ('{{ 1 | print | print 2 }}',
     '21'),
    ('{{range $i, $e := split "x,y" ","}}{{if $i}},{{end}}{{$e}}{{end}}',
     'x,y'),
]

PARSE_ERRORS = [
    ('{{"a" | 1}}',
     'template: :1: non executable command in pipeline stage 2'),
    ('{{nosuch}}',
     'template: :1: function "nosuch" not defined'),
    ('{{if}}',
     'template: :1: missing value for if'),
    ('{{if 1}}',
     'template: :1: unexpected EOF'),
    ('{{if 1}}{{else}}{{else}}{{end}}',
     'template: :1: expected end; found {{else}}'),
    ('{{end}}',
     'template: :1: unexpected {{end}}'),
    ('{{else}}',
     'template: :1: unexpected {{else}}'),
    ('{{range}}{{end}}',
     'template: :1: missing value for range'),
    ('{{with}}{{end}}',
     'template: :1: missing value for with'),
    ('{{$x}}',
     'template: :1: undefined variable "$x"'),
    ('{{$x := 1}}{{end}}',
     'template: :1: unexpected {{end}}'),
    ('{{break}}',
     'template: :1: {{break}} outside {{range}}'),
    ('{{range 1}}{{break 1}}{{end}}',
     'template: :1: unexpected "1" in {{break}}'),
    ('{{range $a, $b, $c := 1}}{{end}}',
     'template: :1: too many declarations in range'),
    ('{{$a, $b := 1}}',
     'template: :1: too many declarations in command'),
    ('{{range $a, 1 := 1}}{{end}}',
     'template: :1: range can only initialize variables'),
    ('{{(1}}',
     'template: :1: unclosed left paren'),
    ('{{1)}}',
     'template: :1: unexpected right paren'),
    ('{{)}}',
     'template: :1: unexpected right paren'),
    ('{{"unterminated}}',
     'template: :1: unterminated quoted string'),
    ('{{`unterminated}}',
     'template: :1: unterminated raw quoted string'),
    ("{{'a}}",
     'template: :1: unterminated character constant'),
    ("{{'ab'}}",
     "template: :1: malformed character constant: 'ab'"),
    ('{{"\\q"}}',
     'template: :1: invalid syntax'),
    ('{{1a}}',
     'template: :1: bad number syntax: "1a"'),
    ('{{0x}}',
     'template: :1: illegal number syntax: "0x"'),
    ('{{08}}',
     'template: :1: integer overflow: "08"'),
    ('{{99999999999999999999}}',
     'template: :1: integer overflow: "99999999999999999999"'),
    ('{{.X.}}',
     'template: :1: unexpected <.> in operand'),
    ('{{1.X}}',
     'template: :1: bad number syntax: "1.X"'),
    ('{{"a".X}}',
     'template: :1: unexpected . after term "\\"a\\""'),
    ('{{nil.X}}',
     'template: :1: unexpected . after term "nil"'),
    ('{{print | 1}}',
     'template: :1: non executable command in pipeline stage 2'),
    ('{{|}}',
     'template: :1: unexpected "|" in command'),
    ('{{#}}',
     'template: :1: unexpected "#" in command'),
    ('{{a:b}}',
     'template: :1: function "a" not defined'),
    ('{{- -}}',
     'template: :1: illegal number syntax: "-"'),
    ('{{/* unclosed',
     'template: :1: unclosed comment'),
    ('{{/* x */ }}',
     'template: :1: comment ends before closing delimiter'),
    ('{{define 1}}{{end}}',
     'template: :1: unexpected "1" in define clause'),
    ('{{template 1}}',
     'template: :1: unexpected "1" in template clause'),
    ('{{block "x"}}{{end}}',
     'template: :1: missing value for block clause'),
    ('{{define "x"}}',
     'template: :1: unexpected EOF'),
]

EXEC_ERRORS = [
    ('{{if nil}}a{{else}}b{{end}}',
     'template: :1:5: executing "" at <nil>: nil is not a command'),
    ('{{range $i, $v := 3}}{{end}}',
     'template: :1:18: executing "" at <3>: can\'t use 3 to iterate over more than one variable'),
    ('{{range "ab"}}{{end}}',
     'template: :1:8: executing "" at <"ab">: range can\'t iterate over ab'),
    ('{{range 1.5}}{{end}}',
     'template: :1:8: executing "" at <1.5>: range can\'t iterate over 1.5'),
    ('{{range true}}{{end}}',
     'template: :1:8: executing "" at <true>: range can\'t iterate over true'),
    ('{{range nil}}{{end}}',
     'template: :1:8: executing "" at <nil>: nil is not a command'),
    ('{{template "nope"}}',
     'template: :1:11: executing "" at <{{template "nope"}}>: template "nope" not defined'),
    ('{{and 1 (index nil 1)}}',
     'template: :1:9: executing "" at <index nil 1>: error calling index: index of untyped nil'),
    ('{{len 3}}',
     'template: :1:2: executing "" at <len 3>: error calling len: len of type int'),
    ('{{len nil}}',
     'template: :1:2: executing "" at <len nil>: error calling len: reflect: call of reflect.Value.Type on zero Value'),
    ('{{index (split "a,b,c" ",") 3}}',
     'template: :1:2: executing "" at <index (split "a,b,c" ",") 3>: error calling index: reflect: slice index out of range'),
    ('{{index (split "a,b,c" ",") 4}}',
     'template: :1:2: executing "" at <index (split "a,b,c" ",") 4>: error calling index: index out of range: 4'),
    ('{{index (split "a,b,c" ",") -1}}',
     'template: :1:2: executing "" at <index (split "a,b,c" ",") -1>: error calling index: index out of range: -1'),
    ('{{index (split "a,b,c" ",") "x"}}',
     'template: :1:2: executing "" at <index (split "a,b,c" ",") "x">: error calling index: cannot index slice/array with type string'),
    ('{{index (split "a,b,c" ",") nil}}',
     'template: :1:2: executing "" at <index (split "a,b,c" ",") nil>: error calling index: cannot index slice/array with nil'),
    ('{{index 1 1}}',
     'template: :1:2: executing "" at <index 1 1>: error calling index: can\'t index item of type int'),
    ('{{index nil 1}}',
     'template: :1:2: executing "" at <index nil 1>: error calling index: index of untyped nil'),
    ('{{slice "abc" 2 1}}',
     'template: :1:2: executing "" at <slice "abc" 2 1>: error calling slice: invalid slice index: 2 > 1'),
    ('{{slice "abc" 1 2 3}}',
     'template: :1:2: executing "" at <slice "abc" 1 2 3>: error calling slice: cannot 3-index slice a string'),
    ('{{slice 1 1}}',
     'template: :1:2: executing "" at <slice 1 1>: error calling slice: can\'t slice item of type int'),
    ('{{slice "abc" 5}}',
     'template: :1:2: executing "" at <slice "abc" 5>: error calling slice: index out of range: 5'),
    ('{{printf 1}}',
     'template: :1:9: executing "" at <1>: expected string; found 1'),
    ('{{printf}}',
     'template: :1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0'),
    ('{{eq 1 1.0}}',
     'template: :1:2: executing "" at <eq 1 1.0>: error calling eq: incompatible types for comparison'),
    ('{{eq 1 "1"}}',
     'template: :1:2: executing "" at <eq 1 "1">: error calling eq: incompatible types for comparison'),
    ('{{lt true false}}',
     'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison'),
    ('{{lt 1 "a"}}',
     'template: :1:2: executing "" at <lt 1 "a">: error calling lt: incompatible types for comparison'),
    ('{{eq 1}}',
     'template: :1:2: executing "" at <eq 1>: error calling eq: missing argument for comparison'),
    ('{{lt nil 1}}',
     'template: :1:2: executing "" at <lt nil 1>: error calling lt: invalid type for comparison'),
    ('{{eq (split "a" ",") (split "a" ",")}}',
     'template: :1:2: executing "" at <eq (split "a" ",") (split "a" ",")>: error calling eq: non-comparable type [a]: []string'),
    ('{{call nil}}',
     'template: :1:2: executing "" at <call nil>: error calling call: call of nil'),
    ('{{call "x"}}',
     'template: :1:2: executing "" at <call "x">: error calling call: non-function "x" of type string'),
    ('{{join "abc" "-"}}',
     'template: :1:7: executing "" at <"abc">: can\'t handle "abc" for arg of type []string'),
    ('{{pad "x" "a" 1}}',
     'template: :1:10: executing "" at <"a">: expected integer; found "a"'),
    ('{{upper 1}}',
     'template: :1:8: executing "" at <1>: expected string; found 1'),
    ('{{upper}}',
     'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 0'),
    ('{{upper "a" "b"}}',
     'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 2'),
    ('{{1 2}}',
     'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
    ('{{nil}}',
     'template: :1:2: executing "" at <nil>: nil is not a command'),
    ('{{(1).X}}',
     'template: :1:3: executing "" at <1>: can\'t evaluate field X in type int'),
]

# Go's rules over data: (template, data, expected); dicts are Go maps here.
DATA: dict[str, Any] = {"S": "str", "N": 3, "F": 2.5, "B": True, "Nil": None,
                        "L": ["a", "b", "c"], "E": [], "M": {"b": 2, "a": 1},
                        "Deep": {"In": {"Most": "x"}}, "Mixed": [1, "a", None]}
DATA_OUTPUTS = [
    ("{{.S}} {{.N}} {{.F}} {{.B}}", "str 3 2.5 true"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper}}", "<no value>"),
    ("{{.Deep.In.Most}}", "x"),
    ("{{.M}}", "map[a:1 b:2]"),
    ("{{.L}} {{.E}}", "[a b c] []"),
    ("{{.Mixed}}", "[1 a <nil>]"),
    ("{{.Nil}}", "<nil>"),
    ("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
    ("{{range .M}}{{.}}{{end}}", "12"),
    ("{{range .E}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Nil}}x{{else}}nil{{end}}", "nil"),
    ("{{range .L}}{{$.S}}{{end}}", "strstrstr"),
    ("{{with .Deep}}{{.In.Most}}{{end}}", "x"),
    ("{{with .Missing}}x{{else}}none{{end}}", "none"),
    ("{{index .M \"a\"}} {{index .M \"zz\"}}", "1 <no value>"),
    ("{{index .Deep \"In\" \"Most\"}}", "x"),
    ("{{len .M}} {{len .L}} {{len .S}}", "2 3 3"),
    ("{{json .M}}", '{"a":1,"b":2}'),
    ("{{json .Missing}} {{json .Nil}}", "null null"),
    ("{{join .L \", \"}}", "a, b, c"),
    ("{{if and .S .N}}yes{{end}}", "yes"),
    ("{{or .Missing .S}}", "str"),
    ("{{not .Missing}}", "true"),
    ("{{printf \"%v|%s\" .Missing .L}}", "<nil>|[a b c]"),
    ("{{(index .L 1) | upper}}", "B"),
    ("{{$d := .Deep}}{{$d.In.Most}}", "x"),
    ("{{(.Deep).In.Most}}", "x"),
    ("{{eq .S \"str\"}} {{eq .N 3}} {{lt .F 3.0}}", "true true true"),
]
EXEC_DATA_ERRORS = [
    ("{{.S.X}}", 'template: :1:4: executing "" at <.S.X>: can\'t evaluate field X in type'
                 " interface {}"),
    ("{{.Nil.X}}", 'template: :1:6: executing "" at <.Nil.X>: nil pointer evaluating'
                   " interface {}.X"),
    ("{{.M 1}}", 'template: :1:2: executing "" at <.M>: M is not a method but has arguments'),
    ("{{range .S}}{{end}}", 'template: :1:8: executing "" at <.S>: range can\'t iterate'
                            " over str"),
    ("{{join .Mixed \",\"}}", 'template: :1:7: executing "" at <.Mixed>: wrong type for value;'
                              " expected []string; got []interface {}"),
    ("{{upper .N}}", 'template: :1:8: executing "" at <.N>: wrong type for value; expected'
                     " string; got int"),
    # Docker: {{1 | upper}} -> :1:6: executing "" at <upper>: wrong type for value ...
    ("{{.N | upper}}", 'template: :1:7: executing "" at <upper>: wrong type for value; expected'
                       " string; got int"),
    ("\n\n  {{index .L 9}}", 'template: :3:4: executing "" at <index .L 9>: error calling'
                             " index: index out of range: 9"),
]


@pytest.mark.parametrize(("template", "expected"), OUTPUTS)
def test_outputs_match_docker(template: str, expected: str) -> None:
    assert parse(template).execute(None) == expected


@pytest.mark.parametrize(("template", "expected"), PARSE_ERRORS)
def test_parse_errors_match_docker(template: str, expected: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(template)
    assert err.value.message == expected


@pytest.mark.parametrize(("template", "expected"), EXEC_ERRORS)
def test_exec_errors_match_docker(template: str, expected: str) -> None:
    with pytest.raises(ExecError) as err:
        parse(template).execute(None)
    assert err.value.message == expected


@pytest.mark.parametrize(("template", "expected"), DATA_OUTPUTS)
def test_data_through_go_rules(template: str, expected: str) -> None:
    assert parse(template).execute(DATA) == expected


@pytest.mark.parametrize(("template", "expected"), EXEC_DATA_ERRORS)
def test_data_errors(template: str, expected: str) -> None:
    with pytest.raises(ExecError) as err:
        parse(template).execute(DATA)
    assert err.value.message == expected


INSPECTED = {"Id": "sha256:ab", "Config": {"Labels": {"a": "b"}, "Env": ["X=1"], "Cmd": None},
             "ContainerConfig": {"Labels": None}}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{.Config.Labels.a}}|{{.Config.Labels.zz}}", "b|<no value>"),
    ("{{.ContainerConfig.Labels}}|{{json .ContainerConfig.Labels}}", "map[]|null"),
    ("{{.ContainerConfig.Labels.x}}|{{len .ContainerConfig.Labels}}", "<no value>|0"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}", "a=b"),
    ("{{json .Config}}", '{"Labels":{"a":"b"},"Env":["X=1"],"Cmd":null}'),
])
def test_inspect_data_keeps_docker_struct_and_map_rules(template: str, expected: str) -> None:
    assert parse(template).execute(INSPECTED, MAP_FIELDS) == expected


def test_a_missing_struct_field_is_an_error_as_in_docker_inspect() -> None:
    # Docker: template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope"
    with pytest.raises(ExecError) as err:
        parse("{{.Config.Nope}}").execute(INSPECTED, MAP_FIELDS)
    assert err.value.message == ('template: :1:9: executing "" at <.Config.Nope>: '
                                 'map has no entry for key "Nope"')
    with pytest.raises(ExecError, match='at <.Foo.Bar>: map has no entry for key "Foo"'):
        parse("{{.Foo.Bar}}").execute(INSPECTED, MAP_FIELDS)


def test_template_depth_is_bounded_without_a_python_crash() -> None:
    with pytest.raises(ExecError, match="exceeded maximum template depth"):
        parse('{{define "R"}}{{template "R" .}}{{end}}{{template "R" 1}}').execute(None)


def test_the_cli_helpers_keep_their_errors() -> None:
    with pytest.raises(TemplateError) as err:
        render("{{if}}", {})
    assert err.value.detail == "template: :1: missing value for if"
    assert render("{{range .L}}{{.}}{{end}}", {"L": [1, 2]}) == "12"
