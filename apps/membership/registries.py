"""The registration rule that membership's extension points share."""

from collections.abc import Callable


def register_named(
    registry: dict[str, Callable], *, label: str, name: str, function: Callable
) -> None:
    """Store `function` in `registry` under `name`.

    Registering the same function twice under a name is a no-op, so a
    repeated `AppConfig.ready()` does no harm. A different function under a
    taken name raises ValueError, which names the function already there.
    """
    registered = registry.get(name)
    if registered is not None and registered is not function:
        raise ValueError(
            f"The {label} {name!r} is already registered by "
            f"{registered.__module__}.{registered.__qualname__}; choose another name."
        )
    registry[name] = function
