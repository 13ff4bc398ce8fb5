#!/usr/bin/env python3
"""
Renders every chat template in ../shared/chat-templates over the conversations in
test/fixtures/chat-templates/conversations.json with Python's jinja2, in the environment
Hugging Face transformers' apply_chat_template builds (transformers/utils/chat_template_utils.py),
and writes the expected outputs to test/fixtures/chat-templates/expected/<template>.json.

The tests compare lib/chat's renderer with these files and need no Python. Regenerate with
    python3 scripts/chat-template-fixtures.py
(Debian's python3-jinja2, 3.1.x). The environment, exactly:
  - ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
    extensions=[AssistantTracker, jinja2.ext.loopcontrols])
  - filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=, separators=, sort_keys=)
  - globals raise_exception (TemplateError) and strftime_now (a fixed clock, "now" in the
    conversations file, so the files do not depend on the day they were made)
  - render(messages=, tools= (None without tools), documents=None, add_generation_prompt=,
    bos_token=, eos_token=, **extra), then continue_final_message's truncation.
"""
import hashlib
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(ROOT, "..", "shared", "chat-templates")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "chat-templates")


class AssistantTracker(Extension):
    """transformers' {% generation %} tag; without return_assistant_tokens_mask it renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def make_environment(now):
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def continue_final_message(rendered, messages):
    final = messages[-1]["content"]
    if final.strip() not in rendered:
        raise ValueError("continue_final_message: the final message does not appear in the rendered chat")
    at = rendered.rindex(final.strip())
    if rendered[at : at + len(final.lstrip())] == final:
        return rendered[: at + len(final.lstrip())]
    return rendered[: at + len(final.strip())]


def render(env, source, spec, conv):
    template = env.from_string(source)
    rendered = template.render(
        messages=conv["messages"],
        tools=spec["tools"] if conv.get("tools") else None,
        documents=None,
        add_generation_prompt=conv["add_generation_prompt"],
        bos_token=spec["bos_token"],
        eos_token=spec["eos_token"],
        **conv.get("extra", {}),
    )
    if conv.get("continue_final_message"):
        rendered = continue_final_message(rendered, conv["messages"])
    return rendered


def main():
    with open(os.path.join(FIXTURES, "conversations.json"), encoding="utf-8") as f:
        spec = json.load(f)
    env = make_environment(datetime.fromisoformat(spec["now"]))
    out_dir = os.path.join(FIXTURES, "expected")
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(n for n in os.listdir(TEMPLATES) if n.endswith(".jinja"))
    counts = {"output": 0, "error": 0}
    for name in names:
        with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
            source = f.read()
        results = {}
        for conv in spec["conversations"]:
            try:
                results[conv["name"]] = {"output": render(env, source, spec, conv)}
                counts["output"] += 1
            except TemplateError as e:
                # raise_exception and jinja2's own errors (undefined attributes, ...).
                results[conv["name"]] = {"error": str(e), "kind": type(e).__name__}
                counts["error"] += 1
            except Exception as e:  # TypeError, ValueError... raised inside the template
                results[conv["name"]] = {"error": str(e), "kind": type(e).__name__}
                counts["error"] += 1
        fixture = {
            "template": name,
            "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            "jinja2": jinja2.__version__,
            "results": results,
        }
        with open(os.path.join(out_dir, name[: -len(".jinja")] + ".json"), "w", encoding="utf-8") as f:
            json.dump(fixture, f, ensure_ascii=False, indent=1)
            f.write("\n")
    print(f"{len(names)} templates x {len(spec['conversations'])} conversations: {counts}", file=sys.stderr)

    # Engine features the shared templates touch only in part: small templates, one context each.
    with open(os.path.join(FIXTURES, "snippets.json"), encoding="utf-8") as f:
        snippets = json.load(f)
    out = []
    for snippet in snippets:
        try:
            result = {"output": env.from_string(snippet["template"]).render(**snippet.get("context", {}))}
        except Exception as e:
            result = {"error": str(e), "kind": type(e).__name__}
        out.append({**snippet, **result})
    with open(os.path.join(out_dir, "_snippets.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(snippets)} snippets", file=sys.stderr)


if __name__ == "__main__":
    main()
