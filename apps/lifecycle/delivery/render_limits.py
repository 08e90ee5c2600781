"""Limits on the work and output of one step template render.

Celery workers render each step text once per enrolled member, so a text that
staff write must not be able to keep a worker busy for minutes or fill its
memory. A render fails with RenderLimitError as soon as its loops pass
MAX_LOOP_ITERATIONS, it has rendered MAX_RENDERED_NODES nodes, any part of its
output or any filter result passes MAX_TEXT_LENGTH, or its filters have read
MAX_FILTERED_CHARACTERS.
"""

import functools
from collections.abc import Callable, Sized
from contextvars import ContextVar
from typing import NoReturn

from django.template import NodeList, Template
from django.template.base import TextNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    FilterNode,
    ForNode,
    IfChangedNode,
    IfNode,
    RegroupNode,
    SpacelessNode,
    VerbatimNode,
    WithNode,
    do_for,
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
# Ten texts of MAX_TEXT_LENGTH. It bounds filters that read a long value on
# every iteration of a loop but return little, such as wordcount or slugify.
MAX_FILTERED_CHARACTERS = 10 * MAX_TEXT_LENGTH


class RenderLimitError(ValueError):
    """A step template render passed one of the limits of this module."""


class RenderBudget:
    """The loop iterations, nodes and filtered characters one render has used."""

    def __init__(self) -> None:
        self.loop_iterations = 0
        self.rendered_nodes = 0
        self.filtered_characters = 0
        self.error: RenderLimitError | None = None

    def fail(self, message: str) -> NoReturn:
        # The if tag turns an error in its condition into False and renders
        # on, so the first error is kept and LimitedTemplate.render raises it.
        error = RenderLimitError(message)
        if self.error is None:
            self.error = error
        raise error

    def count_iteration(self) -> None:
        self.loop_iterations += 1
        if self.loop_iterations > MAX_LOOP_ITERATIONS:
            self.fail(
                f"its loops ran more than {MAX_LOOP_ITERATIONS:,} iterations; "
                "loop over fewer items or nest fewer loops"
            )

    def count_node(self) -> None:
        self.rendered_nodes += 1
        if self.rendered_nodes > MAX_RENDERED_NODES:
            self.fail(
                f"it rendered more than {MAX_RENDERED_NODES:,} tags, variables "
                "and pieces of text; loop over fewer items or shorten what the "
                "loops repeat"
            )

    def count_filtered(self, characters: int) -> None:
        self.filtered_characters += characters
        if self.filtered_characters > MAX_FILTERED_CHARACTERS:
            self.fail(
                f"its filters read more than {MAX_FILTERED_CHARACTERS:,} "
                "characters; filter shorter values, or filter them once "
                "outside loops with the with tag"
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
    reversed, empty and unpacking, with the same unpacking error. Its output
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
                f"Need {len(self.loopvars)} values to unpack in for loop; "
                f"got {item_length}. "
            )
        return dict(zip(self.loopvars, item, strict=True))


class LimitedRegroupNode(RegroupNode):
    """Django's regroup tag, counting each item it groups as a loop iteration."""

    def resolve_expression(self, obj, context):
        _get_budget().count_iteration()
        return super().resolve_expression(obj, context)


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
LIMITED_TAGS = {"for": compile_limited_for, "regroup": compile_limited_regroup}


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
        budget.count_filtered(_size(value))
        result = function(value, *args, **kwargs)
        if _size(result) > MAX_TEXT_LENGTH:
            budget.fail(
                f"the {name} filter returned {_size(result):,} characters or "
                f"items, more than {MAX_TEXT_LENGTH:,}; apply it to a shorter value"
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


class LimitedTemplate(Template):
    """A template whose render fails once it passes a limit of this module."""

    def compile_nodelist(self) -> NodeList:
        return limit_nodelist(super().compile_nodelist())

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
