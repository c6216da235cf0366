"""`python -m pipeline policy validate|show FILE`: check a policy spec, or show it and the judge prompt it renders."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="validate or show a policy spec", description="Validate or inspect a versioned policy spec.")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    v = psub.add_parser(
        "validate",
        help="check a spec against the schema",
        description="Load and validate a policy spec; errors name the file, line, field path and reason.",
    )
    v.add_argument("file", metavar="FILE", help="policy spec (YAML)")
    v.set_defaults(func=validate)
    s = psub.add_parser(
        "show",
        help="summarise a spec, or print the judge prompt exactly as sent",
        description="Summarise a spec (categories, signals, severity levels, styles). With --judge-prompt, print the "
        "judge request (messages and response_format) exactly as it is sent for one (prompt, response) pair.",
    )
    s.add_argument("file", metavar="FILE", help="policy spec (YAML)")
    s.add_argument("--judge-prompt", action="store_true", help="print the rendered judge request instead of the summary")
    s.add_argument("--style", metavar="STYLE", help="print the system prompt of this teacher style instead of the summary")
    s.add_argument("--prompt", default="<the user's request>", help="request to render into the judge prompt")
    s.add_argument("--response", default="<the assistant's response>", help="response to render into the judge prompt")
    s.add_argument("--category", default=None, help="category id to render into the judge prompt (default: the first)")
    s.add_argument("--intent", default="dual_use", help="intent to render into the judge prompt (default dual_use)")
    s.add_argument("--json", action="store_true", help="with --judge-prompt: print the request body fields as JSON")
    s.set_defaults(func=show)


def validate(args: argparse.Namespace) -> int:
    from pipeline.console import make_console

    from pipeline.policy import load_policy

    spec = load_policy(args.file)
    n_signals = sum(len(c.uplift_signals) for c in spec.categories.values()) + len(spec.common_uplift_signals)
    make_console().print(
        f"[green]valid[/]: {spec.name} {spec.version} ({len(spec.categories)} categories, {n_signals} uplift signals) "
        f"sha256 {spec.sha256}",
        highlight=False,
    )
    return 0


def show(args: argparse.Namespace) -> int:
    from pipeline.console import make_console
    from rich.table import Table

    from pipeline.policy import load_policy

    spec = load_policy(args.file)
    if args.style:
        print(spec.style_system_prompt(args.style))
        return 0
    if args.judge_prompt:
        from pipeline.checkers.judge import JUDGE_RESPONSE_FORMAT, render_judge_messages

        category = args.category or spec.category_ids[0]
        messages = render_judge_messages(spec, args.prompt, args.response, category, args.intent)
        if args.json:
            print(json.dumps({"messages": messages, "response_format": JUDGE_RESPONSE_FORMAT}, indent=2, ensure_ascii=False))
        else:
            for m in messages:
                print(f"----- {m['role']} -----")
                print(m["content"])
            print("----- response_format -----")
            print(json.dumps(JUDGE_RESPONSE_FORMAT, indent=2))
        return 0
    console = make_console()
    console.print(f"[bold]{spec.name}[/] {spec.version}  sha256 {spec.sha256}\n{spec.description}", highlight=False)
    sev = Table(title="severity levels")
    for col in ("level", "name", "penalty", "definition"):
        sev.add_column(col)
    for lv in spec.severity_levels:
        sev.add_row(str(lv.level), lv.name, f"{lv.penalty:g}", lv.definition)
    console.print(sev)
    cats = Table(title="categories")
    for col in ("id", "max severity", "end-to-end", "allowed", "disallowed", "uplift signals"):
        cats.add_column(col)
    for cid, c in spec.categories.items():
        cats.add_row(cid, str(c.max_severity), f"{c.end_to_end.kinds} kinds, {c.end_to_end.steps} steps",
                     str(len(c.allowed)), str(len(c.disallowed)), ", ".join(s.id for s in c.uplift_signals))
    console.print(cats)
    console.print(f"common uplift signals: {', '.join(s.id for s in spec.common_uplift_signals)}", highlight=False)
    modes = Table(title="response modes")
    modes.add_column("mode")
    modes.add_column("helpfulness")
    modes.add_column("definition")
    for m, d in spec.response_modes.items():
        modes.add_row(m, d.helpfulness, d.definition)
    console.print(modes)
    console.print("styles: " + ", ".join(spec.styles.model_fields) + " (show one with --style NAME)", highlight=False)
    return 0
