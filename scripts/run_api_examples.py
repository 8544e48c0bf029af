"""Runs every cURL example in API_EXAMPLES.md and compares the answers with the documented ones.

    python scripts/run_api_examples.py                        # own seeded server (live_server.py)
    python scripts/run_api_examples.py --base http://127.0.0.1:8000 --password <demo password>

`--base` is a server started by `make run` (or any server seeded by seed_demo, with payments
pointed at the Stripe stand-in whose URL `--stripe` gives, default http://127.0.0.1:12111).

An example is a ```bash block whose command starts with `curl`, followed by its status line
(`200 OK`) and, unless the answer has no body, a ```json block (or a ```text block, compared
line by line with the same rules, for answers that are not JSON). The commands use $BASE,
$PASSWORD and $STRIPE; a comment `<!-- capture: ACCESS=access REFRESH=refresh -->` before an
example makes fields of its answer available to the next examples as shell variables. The
documented host `localhost:8000` stands for whatever --base names.

How a documented answer matches the real one:
- a string ending in "..." matches any string starting with what precedes it ("..." alone:
  any string), so tokens that change between runs stay readable;
- a date-time (2026-12-01T12:00:00Z) matches any date-time written the same way: the demo
  data moves with the clock;
- an object matches only with exactly the same keys, unless it has a "..." key (more allowed);
- a list whose last element is "..." matches any list that starts with the elements before it;
- anything else must be equal.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC_HOST = "localhost:8000"
FENCE = re.compile(r"^```(\w*)\s*$")
STATUS_LINE = re.compile(r"^`(\d{3})(?: [^`]*)?`")
CAPTURE = re.compile(r"<!--\s*capture:\s*(.*?)\s*-->")
ELLIPSIS = "..."
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Example:
    title: str
    line: int
    command: str
    status: int
    body: str | None
    body_is_json: bool
    captures: dict[str, str] = field(default_factory=dict)


def parse_examples(text: str) -> list[Example]:
    lines = text.splitlines()
    examples: list[Example] = []
    title = ""
    captures: dict[str, str] = {}
    index = 0

    def read_block(start: int) -> tuple[str, int]:
        end = start + 1
        while end < len(lines) and not FENCE.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"line {start + 1}: unclosed code block")
        return "\n".join(lines[start + 1 : end]), end + 1

    def next_content(position: int) -> int:
        while position < len(lines) and not lines[position].strip():
            position += 1
        return position

    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            captures = {}
        if match := CAPTURE.search(line):
            captures = dict(item.split("=", 1) for item in match.group(1).split())
        fence = FENCE.match(line)
        if not fence or fence.group(1) != "bash":
            index += 1
            continue
        command, after = read_block(index)
        if not command.lstrip().startswith("curl "):
            index = after  # a set-up block (variables), not an example
            continue
        status_at = next_content(after)
        status = STATUS_LINE.match(lines[status_at]) if status_at < len(lines) else None
        if not status:
            raise ValueError(f"line {index + 1}: example without a status line like `200 OK`")
        body = None
        after = status_at + 1
        body_at = next_content(after)
        fence = FENCE.match(lines[body_at]) if body_at < len(lines) else None
        if fence and fence.group(1) in {"json", "text"}:
            body, after = read_block(body_at)
        examples.append(
            Example(
                title,
                index + 1,
                command,
                int(status.group(1)),
                body,
                fence is not None and fence.group(1) == "json",
                dict(captures),
            )
        )
        captures = {}
        index = after
    return examples


def mismatches(expected, actual, path: str = "$") -> list[str]:
    if isinstance(expected, str) and DATE_TIME.match(expected):
        if isinstance(actual, str) and DATE_TIME.match(actual):
            return []
        return [f"{path}: expected a date-time, got {actual!r}"]
    if isinstance(expected, str) and expected.endswith(ELLIPSIS):
        if isinstance(actual, str) and actual.startswith(expected[: -len(ELLIPSIS)]):
            return []
        return [f"{path}: expected a string starting {expected[:-3]!r}, got {actual!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        open_ended = ELLIPSIS in expected
        keys = [key for key in expected if key != ELLIPSIS]
        problems = [f"{path}: missing key {key!r}" for key in keys if key not in actual]
        if not open_ended:
            problems += [f"{path}: unexpected key {key!r}" for key in actual if key not in expected]
        for key in keys:
            if key in actual:
                problems += mismatches(expected[key], actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        open_ended = bool(expected) and expected[-1] == ELLIPSIS
        items = expected[:-1] if open_ended else expected
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return [f"{path}: expected {len(items)} item(s), got {len(actual)}"]
        problems = []
        for position, item in enumerate(items):
            problems += mismatches(item, actual[position], f"{path}[{position}]")
        return problems
    if expected != actual or type(expected) is not type(actual):
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def lookup(data, dotted: str):
    for part in dotted.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


DEFAULT_STRIPE = "http://127.0.0.1:12111"  # scripts/dev_server.py's FAKE_STRIPE_PORT


def run_examples(
    examples: list[Example], base: str, password: str, stripe: str = DEFAULT_STRIPE
) -> tuple[int, list[str]]:
    variables = {"BASE": base.rstrip("/"), "PASSWORD": password, "STRIPE": stripe.rstrip("/")}
    netloc = urlsplit(base).netloc
    failures: list[str] = []
    passed = 0
    with tempfile.TemporaryDirectory(prefix="api-examples-") as workdir:
        body_path = Path(workdir) / "body"
        for example in examples:
            label = f"{example.title} (API_EXAMPLES.md:{example.line})"
            # Same command, with the answer's body to a file and the status code on stdout.
            command = example.command.replace(
                "curl ", "curl -sS -o \"$EXAMPLE_BODY\" -w '%{http_code}' ", 1
            )
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ.get("HOME", "/"),
                **variables,
                "EXAMPLE_BODY": str(body_path),
            }
            body_path.write_bytes(b"")
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            raw = body_path.read_text()
            problems = []
            if result.returncode != 0:
                problems.append(f"curl failed ({result.returncode}): {result.stderr.strip()}")
            elif int(result.stdout or 0) != example.status:
                problems.append(f"status {result.stdout}, documented {example.status}")
            actual = None
            if not problems:
                if example.body is None:
                    if raw.strip():
                        problems.append(f"documented without a body, got {raw[:200]!r}")
                elif not example.body_is_json:
                    expected = example.body.replace(DOC_HOST, netloc).splitlines()
                    problems += mismatches(expected, raw.splitlines(), "line")
                else:
                    try:
                        actual = json.loads(raw)
                    except json.JSONDecodeError:
                        problems.append(f"answer is not JSON: {raw[:200]!r}")
                    else:
                        expected = json.loads(example.body.replace(DOC_HOST, netloc))
                        problems += mismatches(expected, actual)
            if not problems:
                for name, dotted in example.captures.items():
                    try:
                        variables[name] = str(lookup(actual, dotted))
                    except (KeyError, IndexError, TypeError, ValueError):
                        problems.append(f"cannot capture {name} from {dotted!r}")
            if problems:
                failures.append(label + ":\n    " + "\n    ".join(problems))
                print(f"FAIL {label}")
            else:
                passed += 1
                print(f"ok   {label}")
    return passed, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=str(ROOT / "API_EXAMPLES.md"))
    parser.add_argument("--base", help="a running server seeded with seed_demo")
    parser.add_argument("--password", help="the demo password printed by seed_demo")
    parser.add_argument("--stripe", default=DEFAULT_STRIPE, help="the Stripe stand-in's URL")
    args = parser.parse_args()

    examples = parse_examples(Path(args.file).read_text())
    if args.base:
        if not args.password:
            parser.error("--password is required with --base")
        passed, failures = run_examples(examples, args.base, args.password, args.stripe)
    else:
        from scripts.live_server import seeded_server_with_fake_stripe

        with seeded_server_with_fake_stripe(suffix="examples") as (server, password, stripe):
            passed, failures = run_examples(examples, server.url, password, stripe.base_url)
    for failure in failures:
        print(failure)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures or not examples else 0


if __name__ == "__main__":
    sys.exit(main())
