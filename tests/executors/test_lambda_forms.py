"""Functions brought as they are (issue 14): the original web UI's Go template, every handler
signature aws-lambda-go accepts, Go imports fixed without moving the user's lines, and Python and
Node.js handlers written as AWS documents them, beside the original's dict-style context."""

from __future__ import annotations

import json

import pytest
from exec_helpers import fn

from core.models import ErrorType

# --- Go: the original's template and the seed's processData -------------------------------------

# The original web UI's default Go template: handler `Handler`, no import lines, uses context and fmt.
UI_TEMPLATE = (
    "func Handler(ctx context.Context, event interface{}) interface{} {\n"
    "    return map[string]interface{}{\n"
    '        "statusCode": 200,\n'
    '        "body":       fmt.Sprintf("Hello from Go! Event: %v", event),\n'
    "    }\n"
    "}\n"
)
UI_IMPORTS = 'package main\n\nimport (\n\t"context"\n\t"fmt"\n)\n\n'


@pytest.mark.go
@pytest.mark.parametrize(
    "head",
    ["", UI_IMPORTS, UI_IMPORTS.replace("package main\n\n", "")],
    ids=["no-imports", "package-and-imports", "imports-only"],
)
@pytest.mark.parametrize("event,shown", [(None, "<nil>"), ({"name": "ada"}, "map[name:ada]")], ids=["null", "name"])
async def test_go_ui_template_runs(service, head, event, shown):
    f = fn("go", head + UI_TEMPLATE, handler="Handler", name="ui-template")
    res = await service.invoke(f, event)
    assert res.success, f"{res.error_type}: {res.error}"
    assert res.result == {"statusCode": 200, "body": f"Hello from Go! Event: {shown}"}
    if not head:
        assert 'added the missing import "context"' in res.logs, res.logs


# functions.md's processData is not among the original platform's files; this one has its defect: encoding/json
# imported and never used.
PROCESS_DATA = (
    "package main\n"
    "\n"
    "import (\n"
    '\t"encoding/json"\n'
    '\t"fmt"\n'
    '\t"strings"\n'
    ")\n"
    "\n"
    "func processData(event interface{}, context map[string]string) (interface{}, error) {\n"
    "\tdata, ok := event.(map[string]interface{})\n"
    "\tif !ok {\n"
    '\t\treturn nil, fmt.Errorf("invalid event: %v", event)\n'
    "\t}\n"
    '\treturn map[string]interface{}{"name": strings.ToUpper(fmt.Sprint(data["name"])), "by": context["user"]}, nil\n'
    "}\n"
)


@pytest.mark.go
async def test_go_process_data_with_an_unused_import(service):
    f = fn("go", PROCESS_DATA, handler="processData", name="process-data")
    res = await service.invoke(f, {"name": "ada"}, {"user": "u1"})
    assert res.success, f"{res.error_type}: {res.error}"
    assert res.result == {"name": "ADA", "by": "u1"}
    assert 'removed the unused import "encoding/json" at line 4' in res.logs, res.logs
    bad = await service.invoke(f, "not a map")
    # the error made at line 12 still points there: the blanked import moved nothing
    assert bad.error_type == ErrorType.HANDLER_ERROR and bad.stack and bad.stack[0].line == 12, bad.stack


# Imports given, but some missing (strings, context; net/url only goimports knows) and one unused (os).
PARTIAL_IMPORTS = (
    'import (\n\t"fmt"\n\t"os"\n)\n\n'
    "func handler(ctx context.Context, event map[string]string) (string, error) {\n"
    '\treturn fmt.Sprint(strings.Repeat(event["s"], 2), url.QueryEscape(" ")), nil\n'
    "}\n"
)


@pytest.mark.go
async def test_go_missing_and_unused_imports_fixed_by_goimports(service):
    if service.runtimes_["go"]._goimports() is None:
        pytest.skip("goimports is not installed (apt-get install golang-golang-x-tools)")
    res = await service.invoke(fn("go", PARTIAL_IMPORTS, name="partial-imports"), {"s": "ab"})
    assert res.success, f"{res.error_type}: {res.error}"
    assert res.result == "abab+"
    for note in (
        'added the missing import "strings"',
        'added the missing import "context"',
        'added the missing import "net/url"',
        'removed the unused import "os" at line 3',
    ):
        assert note in res.logs, res.logs


@pytest.mark.go
async def test_go_missing_imports_without_goimports(service):
    """Without goimports, cloudfn's own list of standard packages: strings and context are on it,
    net/url is not, and the error says so at the user's line and column."""
    service.runtimes_["go"].use_goimports = False
    res = await service.invoke(fn("go", PARTIAL_IMPORTS, name="partial-imports"), {"s": "ab"})
    assert res.error_type == ErrorType.COMPILE_ERROR, f"{res.error_type}: {res.error}"
    column = PARTIAL_IMPORTS.split("\n")[6].index("url.") + 1
    assert res.error.startswith(f"main.go:7:{column}: undefined: url"), res.error
    assert "strings" not in res.error and "context" not in res.error and '"os"' not in res.error, res.error
    fixed = PARTIAL_IMPORTS.replace('url.QueryEscape(" ")', '"+"')
    res = await service.invoke(fn("go", fixed, name="partial-imports"), {"s": "ab"})
    assert res.success and res.result == "abab+", f"{res.error_type}: {res.error}"
    assert 'added the missing import "strings"' in res.logs and 'removed the unused import "os"' in res.logs


@pytest.mark.go
@pytest.mark.parametrize(
    "code",
    [
        # a package line and an import block that cloudfn rewrites (json unused, strings missing)
        'package main\n\nimport (\n\t"encoding/json"\n\t"fmt"\n)\n\n'
        "func Handler(ctx context.Context, event interface{}) interface{} {\n"
        '\tvar n int = "seven"\n'
        '\treturn fmt.Sprint(strings.ToUpper("a"), n)\n}\n',
        # no package, no imports: cloudfn writes a line before the code
        "func Handler(ctx context.Context, event interface{}) interface{} {\n"
        '\tvar n int = "seven"\n'
        '\treturn fmt.Sprint(strings.ToUpper("a"), n)\n}\n',
        # imports but no package line
        'import "encoding/json"\n\n'
        "func Handler(ctx context.Context, event interface{}) interface{} {\n"
        '\tvar n int = "seven"\n'
        '\treturn fmt.Sprint(strings.ToUpper("a"), n)\n}\n',
    ],
    ids=["package-and-imports", "no-imports", "imports-only"],
)
async def test_go_compile_error_position_after_imports_rewritten(service, code):
    line = code.split("\n").index('\tvar n int = "seven"') + 1
    column = len("\tvar n int = ") + 1  # Go counts a tab as one column
    res = await service.invoke(fn("go", code, handler="Handler", name="bad-type"), None)
    assert res.error_type == ErrorType.COMPILE_ERROR, f"{res.error_type}: {res.error}"
    assert res.stack and (res.stack[0].line, res.stack[0].column) == (line, column), (res.error, res.stack)
    assert f"main.go:{line}:{column}:" in res.error and "undefined" not in res.error, res.error


# --- Go: every aws-lambda-go signature ----------------------------------------------------------

GO_TYPES = (
    "type Order struct {\n"
    '\tName  string `json:"name"`\n'
    '\tCount int    `json:"count"`\n'
    "}\n\n"
    "type Receipt struct {\n"
    '\tGreeting string `json:"greeting"`\n'
    '\tTotal    int    `json:"total"`\n'
    "}\n\n"
)
ORDER = {"name": "ada", "count": 3}
RECEIPT = {"greeting": "hi ada", "total": 6}
R = 'Receipt{Greeting: "hi " + o.Name, Total: o.Count * 2}'


@pytest.mark.go
@pytest.mark.parametrize(
    "signature,body,event,result,log",
    [
        ("func H()", 'fmt.Println("ran")', None, None, "ran"),
        ("func H() error", 'fmt.Println("ran"); return nil', None, None, "ran"),
        ("func H(o Order) error", 'fmt.Println("got", o.Name, o.Count); return nil', ORDER, None, "got ada 3"),
        ("func H() (Receipt, error)", 'return Receipt{Greeting: "hi"}, nil', None, {"greeting": "hi", "total": 0}, ""),
        ("func H(o Order) (Receipt, error)", f"return {R}, nil", ORDER, RECEIPT, ""),
        ("func H(o *Order) (*Receipt, error)", f"return &{R}, nil", ORDER, RECEIPT, ""),
        (
            "func H(m map[string]int) (map[string]int, error)",
            'm["total"] = m["a"] + m["b"]; return m, nil',
            {"a": 1, "b": 2},
            {"a": 1, "b": 2, "total": 3},
            "",
        ),
        ("func H(n int) (string, error)", "return strconv.Itoa(n + 1), nil", 41, "42", ""),
        ("func H(e interface{}) (interface{}, error)", "return e, nil", [1, "x"], [1, "x"], ""),
        ("func H(ctx context.Context)", 'fmt.Println("ctx", ctx.Err())', None, None, "ctx <nil>"),
        ("func H(ctx context.Context) error", "return ctx.Err()", None, None, ""),
        (
            "func H(ctx context.Context, o Order) error",
            'fmt.Println("got", o.Name); return nil',
            ORDER,
            None,
            "got ada",
        ),
        (
            "func H(ctx context.Context) (Receipt, error)",
            'return Receipt{Greeting: "hi"}, nil',
            None,
            {"greeting": "hi", "total": 0},
            "",
        ),
        ("func H(ctx context.Context, o Order) (Receipt, error)", f"return {R}, nil", ORDER, RECEIPT, ""),
        (
            "func H(ctx context.Context, m map[string]int) (map[string]int, error)",
            "return m, ctx.Err()",
            {"a": 1},
            {"a": 1},
            "",
        ),
        ("func H(ctx context.Context, n float64) (float64, error)", "return n * 2, nil", 1.5, 3.0, ""),
    ],
)
async def test_go_aws_lambda_signatures(service, signature, body, event, result, log):
    code = GO_TYPES + f"{signature} {{\n\t{body}\n}}\n"
    res = await service.invoke(fn("go", code, handler="H", name="sig"), event)
    assert res.success, f"{signature}: {res.error_type}: {res.error}"
    assert res.result == result, signature
    assert log in res.logs, (signature, res.logs)


@pytest.mark.go
async def test_go_typed_errors_and_events(service):
    code = GO_TYPES + (
        "func H(ctx context.Context, o Order) (Receipt, error) {\n"
        "\tif o.Count < 0 {\n"
        '\t\treturn Receipt{}, errors.New("negative count")\n'
        "\t}\n"
        f"\treturn {R}, nil\n}}\n"
    )
    f = fn("go", code, handler="H", name="typed")
    res = await service.invoke(f, {"name": "x", "count": -1})
    assert res.error_type == ErrorType.HANDLER_ERROR and res.error == "negative count", res.error
    made_at = code.split("\n").index('\t\treturn Receipt{}, errors.New("negative count")') + 1
    assert res.stack and res.stack[0].line == made_at, res.stack
    res = await service.invoke(f, {"name": "x", "count": "three"})
    assert res.error_type == ErrorType.INVALID_EVENT, f"{res.error_type}: {res.error}"
    assert "main.Order" in res.error and "count" in res.error, res.error
    res = await service.invoke(f, ORDER)
    assert res.success and res.result == RECEIPT, res.error


@pytest.mark.go
@pytest.mark.parametrize(
    "signature,words",
    [
        ("func H(a, b, c int) error", "more than two parameters"),
        ("func H(ctx context.Context, a, b int) error", "more than two parameters"),
        ("func H(e interface{}, ctx context.Context) error", "context.Context must be the handler's first parameter"),
        ("func H(e int) (int, int)", "second result is int; it must be error"),
        ("func H(e ...int) error", "variadic"),
    ],
)
async def test_go_signatures_refused_clearly(service, signature, words):
    code = f"{signature} {{\n\treturn nil\n}}\n".replace(
        "return nil", "return 0, 0" if "(int, int)" in signature else "return nil"
    )
    res = await service.invoke(fn("go", code, handler="H", name="bad-sig"), None)
    assert res.error_type == ErrorType.COMPILE_ERROR and words in res.error, f"{res.error_type}: {res.error}"


@pytest.mark.go
async def test_go_context_deadline_is_the_timeout(service):
    """ctx.Deadline() is the invocation's timeout, and a deadline derived from it fires (the
    handler sees ctx.Done()) long before the function's own timeout."""
    code = (
        "func H(ctx context.Context, wait int) (map[string]interface{}, error) {\n"
        "\tdeadline, ok := ctx.Deadline()\n"
        "\tleft := time.Until(deadline).Milliseconds()\n"
        "\tinner, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Millisecond)\n"
        "\tdefer cancel()\n"
        "\tselect {\n"
        "\tcase <-inner.Done():\n"
        "\tcase <-time.After(10 * time.Second):\n"
        '\t\treturn nil, errors.New("the derived context never fired")\n'
        "\t}\n"
        '\treturn map[string]interface{}{"has_deadline": ok, "left_ms": left, "inner": inner.Err().Error(),\n'
        '\t\t"outer": fmt.Sprint(ctx.Err())}, nil\n'
        "}\n"
    )
    f = fn("go", code, handler="H", name="deadline", timeout=5)
    res = await service.invoke(f, 30)
    assert res.success, f"{res.error_type}: {res.error}"
    out = res.result
    assert out["has_deadline"] is True and 4000 < out["left_ms"] <= 5000, out
    assert out["inner"] == "context deadline exceeded" and out["outer"] == "<nil>", out
    # each invocation gets its own deadline: a warm worker's second call is not already past it
    again = await service.invoke(f, 1)
    assert again.success and not again.cold_start and 4000 < again.result["left_ms"] <= 5000, again.result


# --- Python and Node.js: Lambda's context, and the original's map ------------------------------

PY_LAMBDA = """
import json

def lambda_handler(event, context):
    first = context.get_remaining_time_in_millis()
    while context.get_remaining_time_in_millis() == first:  # until a millisecond has passed
        pass
    print("Lambda function ARN:", context.invoked_function_arn)
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": [first, context.get_remaining_time_in_millis()],
        # the original's dict-style context, on the same object
        "dict_name": context.get("function_name"),
        "dict_request": context["request_id"],
        "dict_user": context.get("user"),
        "as_json": json.loads(json.dumps(context)),
        "is_dict": isinstance(context, dict),
    }
"""

NODE_LAMBDA = """
exports.handler = async (event, context) => {
  const first = context.getRemainingTimeInMillis();
  while (context.getRemainingTimeInMillis() === first) { /* until a millisecond has passed */ }
  console.log('Lambda function ARN:', context.invokedFunctionArn);
  return {
    function_name: context.functionName,
    function_version: context.functionVersion,
    memory_limit_in_mb: context.memoryLimitInMB,
    aws_request_id: context.awsRequestId,
    invoked_function_arn: context.invokedFunctionArn,
    log_group_name: context.logGroupName,
    log_stream_name: context.logStreamName,
    remaining: [first, context.getRemainingTimeInMillis()],
    // the original's plain-object context, on the same object
    dict_name: context.function_name,
    dict_request: context['request_id'],
    dict_user: context.user,
    as_json: JSON.parse(JSON.stringify(context)),
    keys: Object.keys(context),
    waits: context.callbackWaitsForEmptyEventLoop,
  };
};
"""


@pytest.mark.parametrize(
    "runtime,code,handler",
    [("python", PY_LAMBDA, "lambda_handler"), ("nodejs", NODE_LAMBDA, "handler")],
    ids=["python", "nodejs"],
)
async def test_lambda_context_object(service, runtime, code, handler):
    f = fn(runtime, code, handler=handler, name="aws-style", memory=160, timeout=7)
    res = await service.invoke(f, {}, {"user": "u1"})
    assert res.success, f"{res.error_type}: {res.error}"
    out = res.result
    assert out["function_name"] == "aws-style" and out["function_version"] == str(f.version)
    assert out["memory_limit_in_mb"] == "160" and out["aws_request_id"] == res.invocation_id
    assert out["invoked_function_arn"].startswith("arn:aws:lambda:")
    assert out["invoked_function_arn"].endswith(":function:aws-style")
    assert out["log_group_name"] == "/aws/lambda/aws-style" and f.id in out["log_stream_name"]
    first, later = out["remaining"]
    assert 0 < later < first <= 7000, out["remaining"]
    assert f"Lambda function ARN: {out['invoked_function_arn']}" in res.logs
    assert out["dict_name"] == "aws-style" and out["dict_request"] == res.invocation_id and out["dict_user"] == "u1"
    platform = {
        "user",
        "function_name",
        "function_id",
        "request_id",
        "memory_limit_mb",
        "function_version",
        "time_remaining_ms",
        "deadline_ms",
    }
    assert set(out["as_json"]) == platform, out["as_json"]  # the map, as the original's code sees it
    if runtime == "python":
        assert out["is_dict"] is True
    else:
        assert set(out["keys"]) == platform and out["waits"] is True, out["keys"]


@pytest.mark.parametrize(
    "code,event,ok,expected",
    [
        # callback style, called later from a timer
        (
            "exports.handler = (event, context, callback) => "
            "{ setTimeout(() => callback(null, {hi: event.name}), 5); };",
            {"name": "ada"},
            True,
            {"hi": "ada"},
        ),
        (
            "exports.handler = (event, context, callback) => { callback(new Error('bad input')); };",
            {},
            False,
            "Error: bad input",
        ),
        ("exports.handler = function (event, context, callback) { callback(null); };", {}, True, None),
        # context.succeed / fail / done, the oldest style
        (
            "exports.handler = function (event, context) { setTimeout(() => context.succeed({n: event.n + 1}), 5); };",
            {"n": 1},
            True,
            {"n": 2},
        ),
        (
            "exports.handler = function (event, context) { context.fail(new Error('it failed')); };",
            {},
            False,
            "Error: it failed",
        ),
        ("exports.handler = function (event, context) { context.done(null, 'done'); };", {}, True, "done"),
        (
            "exports.handler = function (event, context) { context.done(new TypeError('nope')); };",
            {},
            False,
            "TypeError: nope",
        ),
        # returns nothing and leaves nothing pending: Lambda answers null
        ("exports.handler = function (event, context) { console.log('only logs'); };", {}, True, None),
        # an async handler given a callback parameter: its promise decides, as in Lambda
        ("exports.handler = async (event, context, callback) => ({via: 'promise'});", {}, True, {"via": "promise"}),
    ],
    ids=[
        "callback-later",
        "callback-error",
        "callback-null",
        "succeed-later",
        "fail",
        "done",
        "done-error",
        "returns-nothing",
        "async-with-callback-param",
    ],
)
async def test_nodejs_lambda_styles(service, code, event, ok, expected):
    res = await service.invoke(fn("nodejs", code, name="node-style"), event)
    assert res.success is ok, f"{res.error_type}: {res.error}"
    if ok:
        assert res.result == expected
    else:
        assert res.error_type == ErrorType.HANDLER_ERROR and res.error == expected, res.error


async def test_nodejs_late_callback_does_not_answer_the_next_invocation(service):
    """A callback from an earlier invocation that fires during a later one settles nothing."""
    code = (
        "let n = 0;\n"
        "exports.handler = (event, context, callback) => {\n"
        "  n += 1;\n"
        "  if (n === 1) { callback(null, 'first'); setTimeout(() => callback(null, 'stale'), 0); return; }\n"
        "  setTimeout(() => callback(null, 'second'), 20);\n"
        "};\n"
    )
    f = fn("nodejs", code, name="late-callback")
    assert (await service.invoke(f, {})).result == "first"
    res = await service.invoke(f, {})
    assert res.success and res.result == "second" and not res.cold_start, res.result


async def test_python_context_still_a_plain_dict_for_the_original_code(service):
    code = (
        "def handler(event, context):\n"
        "    ctx = dict(context)\n"
        "    ctx['keys'] = sorted(context.keys())\n"
        "    ctx['has_name'] = 'function_name' in context\n"
        "    return ctx\n"
    )
    res = await service.invoke(fn("python", code, name="dict-ctx"), {}, {"user": "u2"})
    assert res.success, res.error
    assert res.result["user"] == "u2" and res.result["request_id"] == res.invocation_id
    assert res.result["has_name"] is True and "aws_request_id" not in res.result["keys"], res.result
    assert json.dumps(res.result)


@pytest.mark.go
@pytest.mark.parametrize("head", ["", "package main\n\n"], ids=["no-package", "package-line"])
@pytest.mark.parametrize("word", ["errors", "fmt"])
async def test_go_string_naming_a_package_is_not_an_import(service, head, word):
    """A string literal "errors" (or "fmt") in code that imports neither is just a string: the
    build must not route errors.New / fmt.Errorf through the runner as if the package were imported."""
    code = head + (
        "func handler(event interface{}, context map[string]string) interface{} {\n"
        f'\tword := "{word}"\n'
        "\treturn word\n}\n"
    )
    res = await service.invoke(fn("go", code, name="word"), None)
    assert res.success, f"{res.error_type}: {res.error}"
    assert res.result == word
