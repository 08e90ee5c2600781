"""Limits on the work and output of one step template render.

Celery workers render each step text once per enrolled member, so a text that
staff write must not be able to keep a worker busy for minutes or fill its
memory. A render fails with RenderLimitError as soon as one of these passes
its limit:

- loop iterations, MAX_LOOP_ITERATIONS;
- rendered nodes, MAX_RENDERED_NODES;
- any part of the output, or any variable or filter result, MAX_TEXT_LENGTH;
- characters that variables and filters read or now tags format,
  MAX_READ_CHARACTERS.

A template fails to parse when a variable has more than MAX_LOOKUPS names or a
now tag's format has more than MAX_NOW_FORMAT_LENGTH characters.
"""

import functools
from collections.abc import Callable, Sized
from contextvars import ContextVar
from typing import NoReturn

from django.template import NodeList, Template, TemplateSyntaxError, Variable
from django.template.base import FilterExpression, Lexer, Parser, TextNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    FilterNode,
    ForNode,
    IfChangedNode,
    IfNode,
    NowNode,
    RegroupNode,
    SpacelessNode,
    VerbatimNode,
    WithNode,
    do_for,
    now,
    regroup,
)
from django.utils.safestring import SafeString, mark_safe

# Real step texts loop over a handful of items, such as the links of an email,
# so 10,000 iterations leave a wide margin. Three nested loops over literal
# strings of 1,000 characters would otherwise run 10^9 iterations per member.
MAX_LOOP_ITERATIONS = 10_000
# An email body of 10,000 words is about 60,000 characters, so real texts fit
# with room to spare, while one member's text stays small in a worker.
MAX_TEXT_LENGTH = 100_000
# Text pieces, variables and tags, each counted every time it renders. A
# typical text renders a few hundred, such as a loop of 20 links with 10
# nodes each. Without this cap, a loop body of thousands of nodes would render
# thousands of times within MAX_LOOP_ITERATIONS.
MAX_RENDERED_NODES = 100_000
# Ten texts of MAX_TEXT_LENGTH. It bounds conditions, filters and now tags
# that read or format a long value on every iteration of a loop but render
# little, such as {% if text == other %}, {{ text|wordcount }} or
# {% now "r" as time %}.
MAX_READ_CHARACTERS = 10 * MAX_TEXT_LENGTH
# The maximum number of names in one variable, as in
# forloop.parentloop.parentloop.counter.
# Each name after the first can call a method of the value, and a method such
# as hex doubles it, so the cap bounds how much one variable can grow before
# its length is checked.
MAX_LOOKUPS = 4
# Real date formats such as "j F Y" or "D, d M Y H:i" have under 30
# characters. One format character can expand to about 32 ("c" and "r" are
# whole dates), so this keeps one now tag's text to a few thousand characters.
MAX_NOW_FORMAT_LENGTH = 100


class RenderLimitError(ValueError):
    """A step template render passed one of the limits of this module."""


class RenderBudget:
    """The loop iterations, nodes and read characters one render has used."""

    def __init__(self) -> None:
        self.loop_iterations = 0
        self.rendered_nodes = 0
        self.read_characters = 0
        self.error: RenderLimitError | None = None

    def fail(self, message: str) -> NoReturn:
        # The if tag turns an error in its condition into False and renders
        # on, so the first error is kept and LimitedTemplate.render raises it.
        error = RenderLimitError(message)
        if self.error is None:
            self.error = error
        raise error

    def stop_if_failed(self) -> None:
        # Loops and node lists call this, so the render stops at the next node
        # after an if condition swallowed the error.
        if self.error is not None:
            raise self.error

    def count_iteration(self) -> None:
        self.stop_if_failed()
        self.loop_iterations += 1
        if self.loop_iterations > MAX_LOOP_ITERATIONS:
            self.fail(
                f"its loops ran more than {MAX_LOOP_ITERATIONS:,} iterations; "
                "loop over fewer items or nest fewer loops"
            )

    def count_node(self) -> None:
        self.stop_if_failed()
        self.rendered_nodes += 1
        if self.rendered_nodes > MAX_RENDERED_NODES:
            self.fail(
                f"it rendered more than {MAX_RENDERED_NODES:,} tags, variables "
                "and pieces of text; loop over fewer items or shorten what the "
                "loops repeat"
            )

    def count_read(self, characters: int) -> None:
        self.read_characters += characters
        if self.read_characters > MAX_READ_CHARACTERS:
            self.fail(
                f"its variables, filters and now tags read or formatted more "
                f"than {MAX_READ_CHARACTERS:,} characters; use shorter values "
                "and formats, or read long values once, outside loops"
            )

    def check_length(self, value, subject: str, fix: str) -> None:
        if _size(value) > MAX_TEXT_LENGTH:
            self.fail(
                f"{subject} {_size(value):,} characters or items, more than "
                f"{MAX_TEXT_LENGTH:,}; {fix}"
            )


_budget: ContextVar[RenderBudget | None] = ContextVar(
    "step_template_budget", default=None
)


def _get_budget() -> RenderBudget:
    budget = _budget.get()
    if budget is None:
        raise RuntimeError(
            "A step template tag or filter ran outside LimitedTemplate.render, "
            "which sets the render budget. Render step templates through "
            "StepTemplateEngine."
        )
    return budget


def fail_render(message: str) -> NoReturn:
    """Raise RenderLimitError with `message` in the current render.

    The budget keeps the error, so the render fails even when an if condition
    catches it.
    """
    _get_budget().fail(message)


class _Output:
    """Rendered pieces whose total length stays within MAX_TEXT_LENGTH."""

    def __init__(self) -> None:
        self.budget = _get_budget()
        self.pieces: list[str] = []
        self.length = 0

    def render_nodes(self, nodes, context) -> None:
        for node in nodes:
            self.budget.count_node()
            self.append(node.render_annotated(context))

    def append(self, piece: str) -> None:
        self.length += len(piece)
        if self.length > MAX_TEXT_LENGTH:
            self.budget.fail(
                f"its text grew past {MAX_TEXT_LENGTH:,} characters; shorten "
                "it or loop over fewer items"
            )
        self.pieces.append(piece)

    def join(self) -> str:
        return "".join(self.pieces)


class LimitedNodeList(NodeList):
    """A node list that stops rendering once its output passes MAX_TEXT_LENGTH."""

    def render(self, context):
        output = _Output()
        output.render_nodes(self, context)
        return SafeString(output.join())


class LimitedForNode(ForNode):
    """Django's for tag, counting each iteration in the render's budget.

    It renders as Django 5.2's ForNode does: the same forloop variables,
    reversed, empty and unpacking. Its output
    stops at MAX_TEXT_LENGTH like a LimitedNodeList.
    """

    def render(self, context):
        parentloop = context.get("forloop", {})
        with context.push():
            values = self.sequence.resolve(context, ignore_failures=True)
            if values is None:
                values = []
            if not hasattr(values, "__len__"):
                values = list(values)
            length = len(values)
            if length == 0:
                return self.nodelist_empty.render(context)
            if self.is_reversed:
                values = reversed(values)

            loop = context["forloop"] = {"parentloop": parentloop}
            output = _Output()
            for index, item in enumerate(values):
                output.budget.count_iteration()
                loop["counter0"] = index
                loop["counter"] = index + 1
                loop["revcounter"] = length - index
                loop["revcounter0"] = length - index - 1
                loop["first"] = index == 0
                loop["last"] = index == length - 1
                if len(self.loopvars) > 1:
                    context.update(self._unpack(item))
                else:
                    context[self.loopvars[0]] = item

                output.render_nodes(self.nodelist_loop, context)

                # Unpacked names sit in a context layer of their own, which
                # must go before the next item's.
                if len(self.loopvars) > 1:
                    context.pop()
        return mark_safe(output.join())

    def _unpack(self, item) -> dict:
        try:
            item_length = len(item)
        except TypeError:
            item_length = 1
        if item_length != len(self.loopvars):
            raise ValueError(
                f"the for tag unpacks {len(self.loopvars)} names from each item, "
                f"but an item has {item_length}; name as many as each item has"
            )
        return dict(zip(self.loopvars, item, strict=True))


class LimitedRegroupNode(RegroupNode):
    """Django's regroup tag, counting each item it groups as a loop iteration."""

    def resolve_expression(self, obj, context):
        _get_budget().count_iteration()
        return super().resolve_expression(obj, context)


class LimitedNowNode(NowNode):
    """Django's now tag, counting the text it formats in the render's budget.

    The text counts as read characters even when `as` stores it in a variable
    and the tag renders nothing, so a loop cannot format text without limit.
    """

    def render(self, context):
        budget = _get_budget()
        output = super().render(context)
        formatted = context[self.asvar] if self.asvar else output
        budget.count_read(len(formatted))
        return output


def compile_limited_now(parser, token) -> LimitedNowNode:
    node = now(parser, token)
    if len(node.format_string) > MAX_NOW_FORMAT_LENGTH:
        raise TemplateSyntaxError(
            f"the now tag's format has {len(node.format_string):,} characters, "
            f"more than {MAX_NOW_FORMAT_LENGTH}; use a shorter format, such as "
            '"j F Y"'
        )
    return LimitedNowNode(node.format_string, node.asvar)


def compile_limited_for(parser, token) -> LimitedForNode:
    node = do_for(parser, token)
    return LimitedForNode(
        node.loopvars,
        node.sequence,
        node.is_reversed,
        node.nodelist_loop,
        node.nodelist_empty,
    )


def compile_limited_regroup(parser, token) -> LimitedRegroupNode:
    node = regroup(parser, token)
    return LimitedRegroupNode(node.target, node.expression, node.var_name)


# The tags that step templates get in place of Django's own.
LIMITED_TAGS = {
    "for": compile_limited_for,
    "now": compile_limited_now,
    "regroup": compile_limited_regroup,
}


def _size(value) -> int:
    return len(value) if isinstance(value, Sized) else 0


def limit_filter(name: str, function: Callable) -> Callable:
    """Wrap a template filter to count what it reads and cap what it returns.

    The result of each filter is capped, not only the rendered text, because
    a chain such as make_list|make_list grows fivefold at each step inside a
    single {{ }} tag.
    """

    @functools.wraps(function)
    def limited(value, *args, **kwargs):
        budget = _get_budget()
        if name == "join" and args and _size(value) > 1:
            # Checked before joining: 25,000 items joined with a separator of
            # 25,000 characters would build 625 million characters at once.
            joined_length = (_size(value) - 1) * len(str(args[0]))
            if joined_length > MAX_TEXT_LENGTH:
                budget.fail(
                    f"the join filter would build {joined_length:,} characters, "
                    f"more than {MAX_TEXT_LENGTH:,}; join fewer items or use a "
                    "shorter separator"
                )
        budget.count_read(_size(value) + sum(_size(arg) for arg in args))
        result = function(value, *args, **kwargs)
        budget.check_length(
            result, f"the {name} filter returned", "apply it to a shorter value"
        )
        return result

    return limited


def limit_nodelist(nodelist: NodeList) -> LimitedNodeList:
    """Return `nodelist` as a LimitedNodeList, with the node lists of its tags too."""
    limited = LimitedNodeList(nodelist)
    limited.contains_nontext = nodelist.contains_nontext
    for node in limited:
        if isinstance(node, IfNode):
            # An if tag renders a node list per branch. Its `nodelist`
            # attribute is a read-only view that joins them.
            node.conditions_nodelists = [
                (condition, limit_nodelist(branch))
                for condition, branch in node.conditions_nodelists
            ]
            continue
        for attribute in node.child_nodelists:
            child = vars(node).get(attribute)
            if isinstance(child, NodeList):
                setattr(node, attribute, limit_nodelist(child))
    return limited


# How much of a variable's text an error quotes. A literal can be 100,000
# characters long, and the error goes to logs and to the enrolment's record.
MAX_QUOTED_LENGTH = 60


def _shorten(text: str) -> str:
    if len(text) <= MAX_QUOTED_LENGTH:
        return text
    return text[: MAX_QUOTED_LENGTH - 1] + "…"


def _count_names(variable: Variable) -> int:
    # A number such as {{ 5 }} is a Variable without lookups.
    return len(variable.lookups or ())


class LimitedFilterExpression(FilterExpression):
    """A variable and its filters, counting what they read in the render's budget.

    A lookup such as text.upper can read the whole value and return little,
    so each name after the first counts the length of the variable's first
    value. The result counts too, and must not pass MAX_TEXT_LENGTH.
    """

    def __init__(self, token: str, parser: Parser) -> None:
        super().__init__(token, parser)
        self.variables = [self.var] if self.is_var else []
        self.variables += [
            arg for _, args in self.filters for is_lookup, arg in args if is_lookup
        ]
        for variable in self.variables:
            if _count_names(variable) > MAX_LOOKUPS:
                raise TemplateSyntaxError(
                    f"the variable {_shorten(variable.var)} has "
                    f"{_count_names(variable)} "
                    f"names, more than {MAX_LOOKUPS}; set part of it with a "
                    "with tag and use that name"
                )

    def resolve(self, context, ignore_failures=False):
        budget = _get_budget()
        for variable in self.variables:
            if _count_names(variable) > 1:
                first_value = context.get(variable.lookups[0])
                budget.count_read(_size(first_value) * (_count_names(variable) - 1))
        value = super().resolve(context, ignore_failures)
        budget.count_read(_size(value))
        budget.check_length(
            value, f"the variable {_shorten(self.token)} has", "use a shorter value"
        )
        return value


class LimitedParser(Parser):
    """A template parser whose variables are LimitedFilterExpression objects."""

    def compile_filter(self, token: str) -> LimitedFilterExpression:
        return LimitedFilterExpression(token, self)


class LimitedTemplate(Template):
    """A template whose render fails once it passes a limit of this module."""

    def compile_nodelist(self) -> NodeList:
        # The step engine never runs in debug mode, so this leaves out the
        # debug lexer and error annotations of Template.compile_nodelist.
        parser = LimitedParser(
            Lexer(self.source).tokenize(),
            self.engine.template_libraries,
            self.engine.template_builtins,
            self.origin,
        )
        nodelist = parser.parse()
        self.extra_data = parser.extra_data
        return limit_nodelist(nodelist)

    def render(self, context):
        budget = RenderBudget()
        token = _budget.set(budget)
        try:
            text = super().render(context)
        finally:
            _budget.reset(token)
        if budget.error is not None:
            raise budget.error
        return text


def _estimate_minimum(nodelist: NodeList) -> tuple[int, int]:
    """Return the fewest loop iterations and characters `nodelist` renders.

    The estimate is valid in every context: a loop over a variable may be empty,
    and of an if tag's branches only the one that renders least counts.
    """
    iterations = characters = 0
    for node in nodelist:
        node_iterations, node_characters = _estimate_node_minimum(node)
        iterations += node_iterations
        characters += node_characters
    return iterations, characters


def _estimate_node_minimum(node) -> tuple[int, int]:
    if isinstance(node, TextNode):
        return 0, len(node.s)
    if isinstance(node, VerbatimNode):
        return 0, len(node.content)
    if isinstance(node, ForNode):
        return _estimate_for_minimum(node)
    if isinstance(node, IfNode):
        branches = [
            _estimate_minimum(branch) for _, branch in node.conditions_nodelists
        ]
        # Without an else branch, an if tag may render nothing.
        if node.conditions_nodelists[-1][0] is not None:
            branches.append((0, 0))
        return _minimum_of(branches)
    if isinstance(node, IfChangedNode):
        return _minimum_of(
            [
                _estimate_minimum(node.nodelist_true),
                _estimate_minimum(node.nodelist_false),
            ]
        )
    if isinstance(node, WithNode | AutoEscapeControlNode):
        return _estimate_minimum(node.nodelist)
    if isinstance(node, FilterNode | SpacelessNode):
        # Their filters can shorten the text, so only the loops count.
        return _estimate_minimum(node.nodelist)[0], 0
    return 0, 0


def _estimate_for_minimum(node: ForNode) -> tuple[int, int]:
    empty = _estimate_minimum(node.nodelist_empty)
    body_iterations, body_characters = _estimate_minimum(node.nodelist_loop)
    sequence = node.sequence
    # A quoted string is the only literal sequence a template can write.
    if isinstance(sequence.var, str) and not sequence.filters:
        length = len(sequence.var)
        if length == 0:
            return empty
        return length * (1 + body_iterations), length * body_characters
    # A sequence from the context may be empty, or have one item or more.
    return _minimum_of([empty, (1 + body_iterations, body_characters)])


def _minimum_of(estimates: list[tuple[int, int]]) -> tuple[int, int]:
    return (
        min(iterations for iterations, _ in estimates),
        min(characters for _, characters in estimates),
    )


def find_render_limit_problem(template: Template) -> str | None:
    """Return which limit `template` passes in every context, or None.

    Only literal text and loops over quoted strings are counted, so this
    catches some templates at save time; the limits while rendering catch
    the rest.
    """
    iterations, characters = _estimate_minimum(template.nodelist)
    if iterations > MAX_LOOP_ITERATIONS:
        return (
            f"runs at least {iterations:,} loop iterations, more than the "
            f"{MAX_LOOP_ITERATIONS:,} one render may run. Loop over fewer "
            "items or nest fewer loops."
        )
    if characters > MAX_TEXT_LENGTH:
        return (
            f"renders at least {characters:,} characters, more than the "
            f"{MAX_TEXT_LENGTH:,} a step text may have. Shorten it."
        )
    return None
